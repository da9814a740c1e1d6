using static TorchSharp.torch;

namespace Amalgam.Models;

/// <summary>
/// Right-padded inputs [batch, T], their 0/1 mask, and next-token labels where -100 (ignored) marks padding and
/// positions whose next token is outside the loss span.
/// </summary>
public static class SequenceBatch
{
    public const long Ignore = -100;

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
