using Amalgam.Merging.Execution;
using Amalgam.Models;
using Amalgam.Tensors;
using Amalgam.Tokenizers;
using static TorchSharp.torch;

namespace Amalgam.Merging.Moe;

/// <summary>
/// The router weights of every layer, [layers, experts, hidden] in float32, as mergekit/moe/router.py's
/// <c>get_gate_params</c> computes them. For an expert with positive prompts P and negative prompts N,
/// g = f(P) − f(N) (f(N) = 0 without negatives), normalised per layer to unit length (‖·‖ clamped at 1e-8):
/// <list type="bullet">
/// <item><c>hidden</c> (= <c>hidden_last</c>): f = the mean over prompts of each layer's input hidden state at the
/// prompt's last token (layer 0's input is the embeddings), from a forward pass of the base;</item>
/// <item><c>hidden_avg</c>: the same, averaged over the prompt's tokens;</item>
/// <item><c>cheap_embed</c>: f = Σ of the prompts' token embeddings, normalised; the same gate in every layer;</item>
/// <item><c>random</c>: N(0, 1) entries; <c>uniform_random</c>: U(−1/√hidden, 1/√hidden) (torch.nn.Linear's init);
/// drawn from a generator seeded by <c>random_seed</c>, not normalised.</item>
/// </list>
/// A prompt is tokenized as BOS + prompt (mergekit: <c>bos_token + prompt</c> without other special tokens).
/// </summary>
public static class MoeGates
{
    public static Tensor Compute(MoeRecipe recipe, string baseDir, DecoderConfig config)
    {
        int layers = config.NumHiddenLayers, hidden = config.HiddenSize, experts = recipe.Experts.Count;
        if (recipe.GateMode == "random")
        {
            using var g = TensorSeed.Generator(recipe.RandomSeed, "moe.gates");
            return randn([layers, experts, hidden], generator: g);
        }
        if (recipe.GateMode == "uniform_random")
        {
            using var g = TensorSeed.Generator(recipe.RandomSeed, "moe.gates");
            double scale = Math.Sqrt(1.0 / hidden);
            using var scope = NewDisposeScope();
            return (rand([layers, experts, hidden], generator: g) * (2 * scale) - scale).MoveToOuterDisposeScope();
        }
        var tokenizer = TokenizerLoader.Load(baseDir);
        var ids = recipe.Experts.Select(e => (Encode(tokenizer, e.PositivePrompts), Encode(tokenizer, e.NegativePrompts))).ToList();
        if (recipe.GateMode == "cheap_embed")
        {
            using var store = TensorStore.Open(baseDir);
            using var embed = store.Load("model.embed_tokens.weight").to(ScalarType.Float32);
            return FromPrompts(ids, p => Cheap(embed, p, layers));
        }
        using var model = CheckpointLoader.Load(baseDir, ScalarType.Float32);
        bool average = recipe.GateMode == "hidden_avg";
        return FromPrompts(ids, p => Hidden(model, p, average));
    }

    static List<IReadOnlyList<int>> Encode(ITextTokenizer tokenizer, IReadOnlyList<string> prompts) =>
        prompts.Select(p => tokenizer.Encode(p, addBos: true)).ToList();

    /// <summary>Per expert g = f(positive) − f(negative), normalised per layer; stacked to [layers, experts, hidden].</summary>
    public static Tensor FromPrompts(IReadOnlyList<(List<IReadOnlyList<int>> Positive, List<IReadOnlyList<int>> Negative)> experts, Func<IReadOnlyList<IReadOnlyList<int>>, Tensor> f)
    {
        using var scope = NewDisposeScope();
        var vectors = experts.Select(e =>
        {
            var v = f(e.Positive);
            if (e.Negative.Count > 0) v = v - f(e.Negative);
            return v / v.norm(1, keepdim: true).clamp_min(1e-8);
        }).ToArray();
        return stack(vectors, 1).to(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    /// <summary>Σ of the prompts' token embeddings (float64), normalised, repeated for every layer: [layers, hidden].</summary>
    public static Tensor Cheap(Tensor embed, IReadOnlyList<IReadOnlyList<int>> prompts, int layers)
    {
        using var scope = NewDisposeScope();
        var all = tensor(prompts.SelectMany(p => p).Select(i => (long)i).ToArray());
        var sum = embed.index_select(0, all).to(ScalarType.Float64).sum(dim: 0);
        sum = sum / sum.norm().clamp_min(1e-8);
        return sum.unsqueeze(0).repeat(layers, 1).MoveToOuterDisposeScope();
    }

    /// <summary>The mean over prompts of each layer's input at the last token (or averaged over tokens), float64 [layers, hidden].</summary>
    public static Tensor Hidden(CausalLM model, IReadOnlyList<IReadOnlyList<int>> prompts, bool average)
    {
        using var _ = inference_mode();
        using var scope = NewDisposeScope();
        var total = zeros([model.Config.NumHiddenLayers, model.Config.HiddenSize], ScalarType.Float64);
        foreach (var p in prompts)
        {
            using var inner = NewDisposeScope();
            var ids = tensor(p.Select(i => (long)i).ToArray()).unsqueeze(0);
            void Observe(int layer, Tensor x) => total[layer].add_((average ? x[0].mean([0]) : x[0, -1]).to(ScalarType.Float64));
            model.HiddenStates(new DecoderInput(ids, LayerInputs: Observe));
        }
        return (total / prompts.Count).MoveToOuterDisposeScope();
    }

    /// <summary>mergekit's warn_degenerate_gates: layers whose [experts, hidden] gate has a condition number above 5.</summary>
    public static IReadOnlyList<int> DegenerateLayers(Tensor gates, double threshold = 5.0)
    {
        using var scope = NewDisposeScope();
        var s = linalg.svdvals(gates.to(ScalarType.Float64));                     // [layers, min(E, H)]
        var cond = s.select(-1, 0) / s.select(-1, s.shape[^1] - 1);
        var values = cond.data<double>().ToArray();
        return Enumerable.Range(0, values.Length).Where(i => !(values[i] <= threshold)).ToList();
    }
}
