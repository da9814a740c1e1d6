using static TorchSharp.torch;

namespace Amalgam.Models;

/// <summary>
/// Batched greedy decoding: prompts of different lengths are left-padded and masked, the prompt is run once,
/// then one token per step through the KV cache. A row stops at its first stop token (not included in its output).
/// </summary>
public static class GreedyDecoder
{
    public static IReadOnlyList<IReadOnlyList<long>> Generate(CausalLM model, IReadOnlyList<IReadOnlyList<long>> prompts,
        int maxNewTokens, IReadOnlyCollection<long>? stopTokens = null, long padId = 0, IMixingPolicy? mixing = null) =>
        Decode(model, prompts, 1, maxNewTokens, stopTokens, padId, mixing, logits => logits.argmax(-1).data<long>().ToArray());

    /// <summary>
    /// The decoding loop shared by greedy decoding and ensembling: every prompt runs as <paramref name="copies"/>
    /// consecutive rows; at each step <paramref name="choose"/> maps the rows' last logits [rows, vocab] to one
    /// next token per prompt, which is appended to all of that prompt's rows.
    /// </summary>
    public static IReadOnlyList<IReadOnlyList<long>> Decode(CausalLM model, IReadOnlyList<IReadOnlyList<long>> prompts, int copies,
        int maxNewTokens, IReadOnlyCollection<long>? stopTokens, long padId, IMixingPolicy? mixing, Func<Tensor, long[]> choose)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxNewTokens);
        ArgumentOutOfRangeException.ThrowIfLessThan(copies, 1);
        if (prompts.Count == 0) return [];
        if (prompts.Any(p => p.Count == 0)) throw new ArgumentException("every prompt needs at least one token");
        var stop = stopTokens?.ToHashSet() ?? [];
        int n = prompts.Count, rows = n * copies, width = prompts.Max(p => p.Count);
        var outputs = Enumerable.Range(0, n).Select(_ => new List<long>()).ToArray();
        var done = new bool[n];

        var (ids, mask, _) = SequenceBatch.LeftPadded(prompts, padId, copies);

        using var _ = inference_mode();
        // Buffers for the prompt and every new token, allocated once: no step grows (copies) the cache.
        using var cache = new KvCache(model.Config.NumHiddenLayers, width + maxNewTokens);
        using var stepOnes = ones(rows, 1, ScalarType.Int64);
        long[] stepIds = ids;
        int stepWidth = width;
        for (int step = 0; step < maxNewTokens && !done.All(d => d); step++)
        {
            long[] next;
            using (var scope = NewDisposeScope())
            {
                var stepMask = step == 0 ? tensor(mask, [rows, width]) : stepOnes;
                var input = new DecoderInput(tensor(stepIds, [rows, stepWidth]), stepMask, cache, LastPositionOnly: true, Mixing: mixing);
                next = choose(model.forward(input).Logits.select(1, 0));
            }
            for (int p = 0; p < n; p++)
            {
                if (done[p]) continue;
                if (stop.Contains(next[p])) done[p] = true;
                else outputs[p].Add(next[p]);
            }
            stepIds = Enumerable.Range(0, rows).Select(r => done[r / copies] ? padId : next[r / copies]).ToArray();
            stepWidth = 1;
        }
        return outputs;
    }
}
