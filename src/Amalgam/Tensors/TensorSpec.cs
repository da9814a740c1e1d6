namespace Amalgam.Tensors;

/// <summary>A tensor a writer is told to expect: declared up front so the header can be written before any data.</summary>
public sealed record TensorSpec(string Name, DType DType, long[] Shape)
{
    public long NumElements => Product(Shape);

    public long ByteLength => checked(NumElements * DType.ElementSize());

    /// <summary>Element count of a shape; checked, because shapes come from untrusted headers.</summary>
    internal static long Product(long[] shape)
    {
        long n = 1;
        foreach (var d in shape) n = checked(n * d);
        return n;
    }

    internal static string FormatShape(long[] shape) => "[" + string.Join(", ", shape) + "]";
}
