namespace Amalgam.Tensors;

/// <summary>What a safetensors header says about one tensor; Begin/End are relative to the data area.</summary>
public sealed record TensorInfo(string Name, DType DType, long[] Shape, long Begin, long End)
{
    public long NumElements => TensorSpec.Product(Shape);

    public long ByteLength => End - Begin;
}
