using Amalgam.Models;
using static TorchSharp.torch;

namespace Amalgam.Routing;

/// <summary>Per-example features for routers, read from the base model.</summary>
public static class PromptFeatures
{
    /// <summary>
    /// The mean over each prompt's tokens of the hidden states <paramref name="source"/> names (default: after the
    /// final norm; <see cref="FeatureSource"/>), [N, hidden] float32 on the CPU. Prompts
    /// run in left-padded batches of <paramref name="batchSize"/> with an attention mask, so a prompt's features do
    /// not depend on its batch-mates (padding is neither attended to nor averaged).
    /// </summary>
    public static Tensor MeanPooled(CausalLM model, IReadOnlyList<IReadOnlyList<long>> prompts, long padId, int batchSize = 64, FeatureSource source = default)
    {
        int? layers = source.IsFinal ? null : source.LayersRun(model.Config.NumHiddenLayers);
        if (batchSize <= 0) throw new ArgumentException($"batch size: must be positive, got {batchSize}");
        for (int i = 0; i < prompts.Count; i++)
            if (prompts[i].Count == 0) throw new ArgumentException($"prompt {i}: empty (mean pooling needs at least one token)");
        var device = model.parameters().First().device;
        using var inference = inference_mode();
        using var scope = NewDisposeScope();
        // Batches are independent (see above), so they run side by side on the workers.
        var starts = Enumerable.Range(0, (prompts.Count + batchSize - 1) / batchSize).Select(b => b * batchSize).ToList();
        var parts = Runtime.TorchWorkers.Map(starts, start =>
        {
            using var mode = inference_mode();
            using var batchScope = NewDisposeScope();
            var batch = prompts.Skip(start).Take(batchSize).ToList();
            var (ids, mask, width) = SequenceBatch.LeftPadded(batch, padId);
            int rows = batch.Count;
            var maskTensor = tensor(mask, [rows, width], device: device);
            var hidden = model.HiddenStates(new DecoderInput(tensor(ids, [rows, width], device: device), maskTensor), layers).to(ScalarType.Float32);
            var weights = maskTensor.to(ScalarType.Float32).unsqueeze(-1);
            var mean = (hidden * weights).sum(1) / weights.sum(1);
            return mean.cpu().DetachFromDisposeScope();
        });
        foreach (var p in parts) scope.Attach(p);
        var all = parts.Length == 0 ? zeros(new long[] { 0, model.Config.HiddenSize }) : cat(parts, 0);
        return all.MoveToOuterDisposeScope();
    }
}
