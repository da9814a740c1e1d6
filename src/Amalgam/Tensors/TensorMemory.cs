using TorchSharp;

namespace Amalgam.Tensors;

/// <summary>Raw access to a contiguous CPU tensor's storage, through TorchSharp's public <c>bytes</c> span.</summary>
internal static class TensorMemory
{
    /// <summary>Spans are int-sized, so larger tensors are visited in pieces of this many bytes at most.</summary>
    private const long MaxChunkBytes = 1L << 30;

    public delegate void ChunkAction(Span<byte> chunk, long byteOffset);

    /// <summary>Calls <paramref name="action"/> on consecutive pieces covering all of the tensor's bytes, in order.</summary>
    public static void ForEachChunk(torch.Tensor tensor, ChunkAction action)
    {
        if (tensor.device_type != DeviceType.CPU || !tensor.is_contiguous())
            throw new ArgumentException("expected a contiguous CPU tensor", nameof(tensor));
        long elementSize = tensor.element_size();
        long total = tensor.numel() * elementSize;
        if (total == 0) return;
        if (total <= MaxChunkBytes)
        {
            action(tensor.bytes, 0);
            return;
        }

        using var scope = torch.NewDisposeScope();
        var flat = tensor.view(-1);
        long perChunk = MaxChunkBytes / elementSize;
        for (long start = 0; start < flat.shape[0]; start += perChunk)
        {
            // A narrowed view of a contiguous 1-D tensor is contiguous; its bytes start at its own offset.
            using var piece = flat.narrow(0, start, Math.Min(perChunk, flat.shape[0] - start));
            action(piece.bytes, start * elementSize);
        }
    }
}
