using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Amalgam.Models;

/// <summary>
/// Qwen2-MoE's sparse block (transformers' <c>Qwen2MoeSparseMoeBlock</c>): p = softmax(gate·x) in float32 over the
/// routed experts; the top <c>num_experts_per_tok</c> probabilities (renormalised to sum to 1 only with
/// <c>norm_topk_prob</c>, which Qwen2MoeConfig leaves false) cast to x's dtype weight the chosen SwiGLU experts
/// (width <c>moe_intermediate_size</c>); every token also goes through the shared expert (width
/// <c>shared_expert_intermediate_size</c>), scaled by σ(shared_expert_gate·x), a [1, hidden] gate:
/// y = Σ_{e ∈ top k} wₑ·expertₑ(x) + σ(g_s·x)·shared(x). Each routed expert runs only on the rows routed to it.
/// </summary>
public sealed class Qwen2MoeSparseBlock : nn.Module<Tensor, ForwardContext, Tensor>
{
    private readonly AdaptableLinear gate;
    private readonly ModuleList<GatedMlp> experts;
    private readonly GatedMlp shared_expert;
    private readonly AdaptableLinear shared_expert_gate;
    private readonly int topK;
    private readonly bool normalize;
    private static readonly Scalar One = 1.ToScalar();

    public Qwen2MoeSparseBlock(string name, DecoderConfig c, ScalarType dtype) : base(name)
    {
        gate = new AdaptableLinear(nameof(gate), c.HiddenSize, c.NumExperts, false, dtype);
        experts = new ModuleList<GatedMlp>(Enumerable.Range(0, c.NumExperts).Select(e => new GatedMlp(e.ToString(), c, dtype, c.MoeIntermediateSize)).ToArray());
        shared_expert = new GatedMlp(nameof(shared_expert), c, dtype, c.SharedExpertIntermediateSize);
        shared_expert_gate = new AdaptableLinear(nameof(shared_expert_gate), c.HiddenSize, 1, false, dtype);
        topK = c.NumExpertsPerToken;
        normalize = c.NormTopkProb;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, ForwardContext ctx)
    {
        using var scope = NewDisposeScope();
        var shape = x.shape;
        var rows = x.reshape(-1, shape[^1]);
        var probabilities = nn.functional.softmax(gate.call(rows, ctx), 1, ScalarType.Float32);
        var (top, chosen) = probabilities.topk(topK, dim: -1);
        var weights = (normalize ? top / top.sum(-1, keepdim: true) : top).to(x.dtype);
        var output = zeros_like(rows);
        for (int e = 0; e < experts.Count; e++)
        {
            var hits = chosen.eq(e).nonzero();                       // [m, 2]: (row, slot)
            if (hits.shape[0] == 0) continue;
            var row = hits.select(1, 0);
            var weight = weights.index(row, hits.select(1, 1)).unsqueeze(-1);
            // A per-row expert mixture would see the gathered rows, not the batch's: refused by CausalLM.
            var y = experts[e].call(rows.index_select(0, row), ctx with { Mixing = null }) * weight;
            output.index_add_(0, row, y, One);
        }
        output.add_(nn.functional.sigmoid(shared_expert_gate.call(rows, ctx)) * shared_expert.call(rows, ctx));
        return output.reshape(shape).MoveToOuterDisposeScope();
    }
}
