using Amalgam.Experts;
using Amalgam.Merging.Lora;
using Amalgam.Merging.Recipes;
using Amalgam.Models;
using Amalgam.Tensors;
using static TorchSharp.torch;

namespace Amalgam.Merging.Execution;

/// <summary>
/// A merge that returns the result instead of writing a folder: a <see cref="CausalLM"/> whose parameters are filled
/// one merged tensor at a time by the streaming executor's per-tensor code (no temporary checkpoint), or the merged
/// <see cref="LoraAdapter"/> of an adapter output.
/// </summary>
public static class InMemoryMerge
{
    /// <summary>The merged model (<c>output: model</c> semantics, whatever the plan's output says), in <paramref name="dtype"/> or the output dtype widened for compute.</summary>
    public static CausalLM ToModel(MergeRecipe recipe, ScalarType? dtype = null, MergeRunOptions? options = null)
    {
        options ??= new();
        using var inputs = new MergeInputSet(recipe);
        var plan = StreamingMerge.Prepare(inputs, options);
        var config = DecoderConfig.Load(inputs.ReferenceFolder);
        if (config.IsGpt2)
            throw new NotSupportedException($"{recipe.Source}: an in-memory merge of {config.Architecture} is not supported (its checkpoint names are mapped onto the decoder's only when a folder is loaded); merge into a folder and load that");
        if (plan.Vocab is { } v) config.VocabSize = (int)v;
        if (recipe.Slices is not null) config.NumHiddenLayers = inputs.OutputLayers;
        const string embeddings = "model.embed_tokens.weight";
        var stored = plan.Tensors.FirstOrDefault(p => p.Spec.Name == embeddings)?.Spec.DType
            ?? throw new InvalidDataException($"{recipe.Source}: the merge has no '{embeddings}'");
        var model = new CausalLM(config, dtype ?? Precision.ComputeType(stored.ToScalarType()));
        try
        {
            var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            var names = plan.Tensors.Select(p => p.Spec.Name).ToHashSet(StringComparer.Ordinal);
            var missing = parameters.Keys.Where(k => !names.Contains(k)).Order(StringComparer.Ordinal).ToList();
            var unexpected = names.Where(k => !parameters.ContainsKey(k) && !k.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal)
                && !(config.TieWordEmbeddings && k == CausalLM.OutputLayer + ".weight")).Order(StringComparer.Ordinal).ToList();
            if (missing.Count > 0 || unexpected.Count > 0)
                throw new InvalidDataException($"{recipe.Source}: merged tensors do not match {config.Architecture}: missing {string.Join(", ", missing.Take(8))}; unexpected {string.Join(", ", unexpected.Take(8))}");
            using var _ = no_grad();
            StreamingMerge.MergeEach(inputs, plan, options, new StreamingMerge.MergeCounts(), (name, t) =>
            {
                if (parameters.TryGetValue(name, out var p)) p.copy_(t.to(p.dtype));
            });
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>The merged adapter of an adapter output (<c>adapter</c>, <c>cat</c>, <c>factor_linear</c>), with its truncation report.</summary>
    public static (LoraAdapter Adapter, TruncationReport? Report) ToAdapter(MergeRecipe recipe, MergeRunOptions? options = null)
    {
        using var inputs = new MergeInputSet(recipe);
        var output = recipe.Output ?? MergeOutput.Adapter;
        if (output == MergeOutput.Model) throw new InvalidDataException($"{recipe.Source}: output: model; use ToModel");
        var built = AdapterMerge.Build(inputs, output, "merged", options ?? new());
        return (built.Adapter, built.Report);
    }
}
