using static TorchSharp.torch;

namespace Amalgam.Models;

/// <summary>
/// Batched greedy decoding: prompts of different lengths are left-padded and masked, the prompt is run once,
/// then one token per step through the KV cache. A row stops at its first stop token (not included in its output).
/// </summary>
public static class GreedyDecoder
{
    public static IReadOnlyList<IReadOnlyList<long>> Generate(CausalLM model, IReadOnlyList<IReadOnlyList<long>> prompts,
        int maxNewTokens, IReadOnlyCollection<long>? stopTokens = null, long padId = 0, Mixing.IMixingPolicy? mixing = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxNewTokens);
        if (prompts.Count == 0) return [];
        if (prompts.Any(p => p.Count == 0)) throw new ArgumentException("every prompt needs at least one token");
        var stop = stopTokens?.ToHashSet() ?? [];
        int rows = prompts.Count, width = prompts.Max(p => p.Count);
        var outputs = Enumerable.Range(0, rows).Select(_ => new List<long>()).ToArray();
        var done = new bool[rows];

        var ids = new long[rows * width];
        var mask = new long[rows * width];
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < prompts[r].Count; i++)
            {
                int at = r * width + width - prompts[r].Count + i;
                ids[at] = prompts[r][i];
                mask[at] = 1;
            }
        for (int i = 0; i < ids.Length; i++) if (mask[i] == 0) ids[i] = padId;

        using var _ = inference_mode();
        using var cache = new KvCache(model.Config.NumHiddenLayers);
        long[] stepIds = ids, stepMask = mask;
        int stepWidth = width;
        for (int step = 0; step < maxNewTokens && !done.All(d => d); step++)
        {
            long[] next;
            using (var scope = NewDisposeScope())
            {
                var input = new DecoderInput(tensor(stepIds, [rows, stepWidth]), tensor(stepMask, [rows, stepWidth]), cache, LastPositionOnly: true, Mixing: mixing);
                next = model.forward(input).Logits.select(1, 0).argmax(-1).data<long>().ToArray();
            }
            for (int r = 0; r < rows; r++)
            {
                if (done[r]) continue;
                if (stop.Contains(next[r])) done[r] = true;
                else outputs[r].Add(next[r]);
            }
            stepIds = next.Select((t, r) => done[r] ? padId : t).ToArray();
            stepMask = Enumerable.Repeat(1L, rows).ToArray();
            stepWidth = 1;
        }
        return outputs;
    }
}
