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
        // A per-row expert mixture would see the gathered rows, not the batch's: refused by CausalLM.
        var routed = ctx with { Mixing = null };
        var output = SparseMoeBlock.RouteTopK(rows, gate.call(rows, ctx), topK, normalize, experts.Count, (e, picked) => experts[e].call(picked, routed));
        output.add_(nn.functional.sigmoid(shared_expert_gate.call(rows, ctx)) * shared_expert.call(rows, ctx));
        return output.reshape(shape).MoveToOuterDisposeScope();
    }
}
