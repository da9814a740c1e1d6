using static TorchSharp.torch;

namespace Amalgam.Models;

/// <summary>
/// The two ways a batch of token sequences is padded, used by every forward that batches: right padding for scoring
/// and training (<see cref="Build"/>: positions line up with the labels) and left padding for generation and prompt
/// features (<see cref="LeftPadded"/>: every prompt's last token sits in the last column, where decoding continues).
/// </summary>
public static class SequenceBatch
{
    public const long Ignore = -100;

    /// <summary>
    /// Prompts left-padded to the longest, each repeated as <paramref name="copies"/> consecutive rows (row r holds
    /// prompt r / copies): ids and 0/1 mask, row-major [prompts·copies, width].
    /// </summary>
    public static (long[] Ids, long[] Mask, int Width) LeftPadded(IReadOnlyList<IReadOnlyList<long>> prompts, long padId, int copies = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(copies, 1);
        int rows = prompts.Count * copies, width = prompts.Count == 0 ? 0 : prompts.Max(p => p.Count);
        var ids = new long[rows * width];
        var mask = new long[rows * width];
        Array.Fill(ids, padId);
        for (int r = 0; r < rows; r++)
        {
            var prompt = prompts[r / copies];
            for (int i = 0, at = r * width + width - prompt.Count; i < prompt.Count; i++, at++)
            {
                ids[at] = prompt[i];
                mask[at] = 1;
            }
        }
        return (ids, mask, width);
    }

    /// <summary>
    /// Right-padded inputs [batch, T], their 0/1 mask, and next-token labels where -100 (ignored) marks padding and
    /// positions whose next token is outside the loss span.
    /// </summary>
    public static (Tensor Ids, Tensor Mask, Tensor Labels) Build(IReadOnlyList<TokenSequence> sequences, long padId)
    {
        int rows = sequences.Count, width = sequences.Max(s => s.Ids.Length) - 1;
        var ids = new long[rows * width];
        var mask = new long[rows * width];
        var labels = new long[rows * width];
        Array.Fill(ids, padId);
        Array.Fill(labels, Ignore);
        for (int r = 0; r < rows; r++)
        {
            var s = sequences[r];
            for (int i = 0; i < s.Ids.Length - 1; i++)
            {
                ids[r * width + i] = s.Ids[i];
                mask[r * width + i] = 1;
                if (i + 1 >= s.LossFrom) labels[r * width + i] = s.Ids[i + 1];
            }
        }
        return (tensor(ids, [rows, width]), tensor(mask, [rows, width]), tensor(labels, [rows, width]));
    }
}
