using Amalgam.Tensors;
using TorchSharp;

namespace Amalgam.Tests.Tensors;

public class DTypeTests
{
    [Theory]
    [InlineData(DType.F32, "F32", 4, torch.ScalarType.Float32)]
    [InlineData(DType.F16, "F16", 2, torch.ScalarType.Float16)]
    [InlineData(DType.BF16, "BF16", 2, torch.ScalarType.BFloat16)]
    [InlineData(DType.I64, "I64", 8, torch.ScalarType.Int64)]
    [InlineData(DType.I32, "I32", 4, torch.ScalarType.Int32)]
    [InlineData(DType.U8, "U8", 1, torch.ScalarType.Byte)]
    [InlineData(DType.BOOL, "BOOL", 1, torch.ScalarType.Bool)]
    public void Names_sizes_and_torch_types_correspond(DType dtype, string name, int size, torch.ScalarType scalar)
    {
        Assert.Equal(name, dtype.SafeTensorsName());
        Assert.Equal(size, dtype.ElementSize());
        Assert.Equal(dtype, DTypeExtensions.ParseSafeTensorsName(name));
        Assert.Equal(scalar, dtype.ToScalarType());
        Assert.Equal(dtype, scalar.ToDType());
    }

    [Theory]
    [InlineData("F8_E4M3")]
    [InlineData("f32")]
    [InlineData("F64")]
    [InlineData("")]
    public void Unknown_names_are_refused(string name)
    {
        Assert.False(DTypeExtensions.TryParseSafeTensorsName(name, out _));
        Assert.Throws<FormatException>(() => DTypeExtensions.ParseSafeTensorsName(name));
    }

    [Fact]
    public void Torch_types_without_a_counterpart_are_refused()
    {
        Assert.Throws<NotSupportedException>(() => torch.ScalarType.Float64.ToDType());
    }
}
