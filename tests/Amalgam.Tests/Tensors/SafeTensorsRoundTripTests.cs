using System.Buffers.Binary;
using Amalgam.Tensors;
using TorchSharp;

namespace Amalgam.Tests.Tensors;

public class SafeTensorsRoundTripTests
{
    private static readonly float[] Values = [1.0f, -2.5f, 0.5f, 3.0f, -0.0f, 1e-3f, 65504f, 0.1f, 123.456f, -7.25f, 1.01171875f, 42f];

    [Theory]
    [InlineData(torch.ScalarType.Float32)]
    [InlineData(torch.ScalarType.Float16)]
    [InlineData(torch.ScalarType.BFloat16)]
    public void Float_tensors_round_trip_bit_exactly(torch.ScalarType scalarType)
    {
        using var dir = new TempFolder();
        using var scope = torch.NewDisposeScope();
        var original = torch.tensor(Values).reshape(3, 4).to(scalarType);
        var path = dir.File("weights.safetensors");

        SafeTensorsWriter.Save(path, new Dictionary<string, torch.Tensor> { ["w"] = original });

        using var file = SafeTensorsFile.Open(path);
        var info = file.Info("w");
        Assert.Equal(scalarType.ToDType(), info.DType);
        Assert.Equal(new long[] { 3, 4 }, info.Shape);
        Assert.Equal(12L * scalarType.ToDType().ElementSize(), info.ByteLength);
        var loaded = file.Load("w");
        Assert.Equal(scalarType, loaded.dtype);
        Assert.Equal(new long[] { 3, 4 }, loaded.shape);
        Assert.Equal(DeviceType.CPU, loaded.device_type);
        Assert.Equal(original.bytes.ToArray(), loaded.bytes.ToArray());
        Assert.Equal(original.bytes.ToArray(), file.Bytes("w").ToArray());
    }

    [Fact]
    public void LoadInto_fills_an_existing_tensor_with_the_stored_bytes_and_refuses_a_mismatch()
    {
        using var dir = new TempFolder();
        using var scope = torch.NewDisposeScope();
        var original = torch.tensor(Values).reshape(3, 4);
        var path = dir.File("weights.safetensors");
        SafeTensorsWriter.Save(path, new Dictionary<string, torch.Tensor> { ["w"] = original });

        using var file = SafeTensorsFile.Open(path);
        var destination = torch.full(3, 4, 9f);
        file.LoadInto("w", destination);
        Assert.Equal(Values, destination.data<float>().ToArray());
        var wrongDtype = torch.zeros(3, 4, torch.ScalarType.BFloat16);
        Assert.Throws<ArgumentException>(() => file.LoadInto("w", wrongDtype));
        var wrongShape = torch.zeros(4, 3);
        Assert.Throws<ArgumentException>(() => file.LoadInto("w", wrongShape));
        var notContiguous = torch.zeros(4, 3).t();
        Assert.Throws<ArgumentException>(() => file.LoadInto("w", notContiguous));
        Assert.Equal(0f, wrongShape.abs().sum().item<float>()); // a refused destination is left untouched
    }

    [Fact]
    public void Bf16_bits_match_a_hand_computation()
    {
        using var dir = new TempFolder();
        using var scope = torch.NewDisposeScope();
        // bf16 is the top half of the f32 bits, rounded to nearest even:
        // 1.0f = 0x3F800000, -2.5f = 0xC0200000, 3.0f = 0x40400000, 0.5f = 0x3F000000,
        // 1.01171875f = 0x3F818000 is a tie whose kept half is odd, so it rounds up to 0x3F82.
        float[] input = [1.0f, -2.5f, 3.0f, 0.5f, 1.01171875f];
        ushort[] expected = [0x3F80, 0xC020, 0x4040, 0x3F00, 0x3F82];
        var path = dir.File("bf16.safetensors");
        SafeTensorsWriter.Save(path, new Dictionary<string, torch.Tensor> { ["x"] = torch.tensor(input).to(torch.ScalarType.BFloat16) });

        using var file = SafeTensorsFile.Open(path);
        var raw = file.Bytes("x").ToArray();
        var bits = Enumerable.Range(0, input.Length).Select(i => BinaryPrimitives.ReadUInt16LittleEndian(raw.AsSpan(2 * i))).ToArray();
        Assert.Equal(expected, bits);
        Assert.Equal(new[] { 1.0f, -2.5f, 3.0f, 0.5f, 1.015625f }, file.Load("x").to(torch.ScalarType.Float32).data<float>().ToArray());
    }

    [Fact]
    public void F16_bits_match_a_hand_computation()
    {
        using var dir = new TempFolder();
        using var scope = torch.NewDisposeScope();
        // IEEE half: 1.0 = 0x3C00, -2.0 = 0xC000, 65504 (largest finite) = 0x7BFF, 0.5 = 0x3800.
        var path = dir.File("f16.safetensors");
        SafeTensorsWriter.Save(path, new Dictionary<string, torch.Tensor> { ["x"] = torch.tensor(new[] { 1.0f, -2.0f, 65504f, 0.5f }).to(torch.ScalarType.Float16) });

        using var file = SafeTensorsFile.Open(path);
        var raw = file.Bytes("x").ToArray();
        Assert.Equal(new byte[] { 0x00, 0x3C, 0x00, 0xC0, 0xFF, 0x7B, 0x00, 0x38 }, raw);
    }

    [Fact]
    public void Integer_and_bool_tensors_written_by_hand_are_read()
    {
        using var dir = new TempFolder();
        using var scope = torch.NewDisposeScope();
        var data = new List<byte>();
        data.AddRange(BitConverter.GetBytes(-3L));
        data.AddRange(BitConverter.GetBytes(long.MaxValue));                 // i64 [2]: 0..16
        data.AddRange(BitConverter.GetBytes(7));
        data.AddRange(BitConverter.GetBytes(-1));
        data.AddRange(BitConverter.GetBytes(int.MinValue));                 // i32 [3]: 16..28
        data.AddRange(new byte[] { 0, 255, 128, 1 });                        // u8 [2,2]: 28..32
        data.AddRange(new byte[] { 1, 0, 1 });                               // bool [3]: 32..35
        var header = """
            {"i64":{"dtype":"I64","shape":[2],"data_offsets":[0,16]},
             "i32":{"dtype":"I32","shape":[3],"data_offsets":[16,28]},
             "u8":{"dtype":"U8","shape":[2,2],"data_offsets":[28,32]},
             "flags":{"dtype":"BOOL","shape":[3],"data_offsets":[32,35]}}
            """;
        var path = dir.WriteRaw("ints.safetensors", header, data.ToArray());

        using var file = SafeTensorsFile.Open(path);
        Assert.Equal(new[] { "i64", "i32", "u8", "flags" }, file.Tensors.Select(t => t.Name));
        Assert.Equal(new[] { -3L, long.MaxValue }, file.Load("i64").data<long>().ToArray());
        Assert.Equal(new[] { 7, -1, int.MinValue }, file.Load("i32").data<int>().ToArray());
        var u8 = file.Load("u8");
        Assert.Equal(new long[] { 2, 2 }, u8.shape);
        Assert.Equal(new byte[] { 0, 255, 128, 1 }, u8.data<byte>().ToArray());
        var flags = file.Load("flags");
        Assert.Equal(torch.ScalarType.Bool, flags.dtype);
        Assert.Equal(new[] { true, false, true }, flags.data<bool>().ToArray());
    }

    [Fact]
    public void Scalar_and_empty_tensors_round_trip()
    {
        using var dir = new TempFolder();
        using var scope = torch.NewDisposeScope();
        var path = dir.File("odd.safetensors");
        SafeTensorsWriter.Save(path, new Dictionary<string, torch.Tensor>
        {
            ["scalar"] = torch.tensor(5L),
            ["empty"] = torch.zeros(0, 3),
        });

        using var file = SafeTensorsFile.Open(path);
        var scalar = file.Load("scalar");
        Assert.Empty(scalar.shape);
        Assert.Equal(5L, scalar.item<long>());
        var empty = file.Load("empty");
        Assert.Equal(new long[] { 0, 3 }, empty.shape);
        Assert.Equal(0, file.Info("empty").ByteLength);
    }

    [Fact]
    public void Non_contiguous_tensors_are_written_in_logical_order()
    {
        using var dir = new TempFolder();
        using var scope = torch.NewDisposeScope();
        var transposed = torch.arange(6, dtype: torch.ScalarType.Float32).reshape(2, 3).t();
        Assert.False(transposed.is_contiguous());
        var path = dir.File("t.safetensors");
        SafeTensorsWriter.Save(path, new Dictionary<string, torch.Tensor> { ["t"] = transposed });

        using var file = SafeTensorsFile.Open(path);
        Assert.Equal(new[] { 0f, 3f, 1f, 4f, 2f, 5f }, file.Load("t").data<float>().ToArray());
    }

    [Fact]
    public void Metadata_is_read_and_missing_tensors_are_named()
    {
        using var dir = new TempFolder();
        using var scope = torch.NewDisposeScope();
        var path = dir.File("meta.safetensors");
        SafeTensorsWriter.Save(path, new Dictionary<string, torch.Tensor> { ["a"] = torch.ones(2) },
            new Dictionary<string, string> { ["format"] = "pt", ["note"] = "x" });

        using var file = SafeTensorsFile.Open(path);
        Assert.Equal("pt", file.Metadata["format"]);
        Assert.Equal("x", file.Metadata["note"]);
        Assert.True(file.Contains("a"));
        Assert.False(file.Contains("b"));
        var e = Assert.Throws<KeyNotFoundException>(() => file.Info("b"));
        Assert.Contains("meta.safetensors", e.Message);
        Assert.Contains("'b'", e.Message);
        Assert.Throws<KeyNotFoundException>(() => file.Load("b"));
    }

    [Fact]
    public void Tensors_are_listed_in_data_offset_order()
    {
        using var dir = new TempFolder();
        var path = dir.WriteRaw("order.safetensors",
            """{"z":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[2,3]},"m":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}""",
            [1, 2, 3]);
        using var file = SafeTensorsFile.Open(path);
        Assert.Equal(new[] { "z", "m", "a" }, file.Tensors.Select(t => t.Name));
    }

    [Fact]
    public void Bool_data_other_than_zero_or_one_is_refused_on_load()
    {
        using var dir = new TempFolder();
        var path = dir.WriteRaw("bool.safetensors", """{"b":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}}""", [1, 2]);
        using var file = SafeTensorsFile.Open(path);
        var e = Assert.Throws<InvalidDataException>(() => file.Load("b"));
        Assert.Contains("bool.safetensors", e.Message);
        Assert.Contains("'b'", e.Message);
    }
}
