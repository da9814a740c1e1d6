using System.Text;
using Amalgam.Tensors;
using TorchSharp;

namespace Amalgam.Tests.Tensors;

public class SafeTensorsWriterTests
{
    [Fact]
    public void Writer_produces_the_exact_expected_bytes()
    {
        using var dir = new TempFolder();
        using var scope = torch.NewDisposeScope();
        var path = dir.File("exact.safetensors");
        SafeTensorsWriter.Save(path, new Dictionary<string, torch.Tensor> { ["a"] = torch.tensor(new[] { 1.0f, -2.5f }) },
            new Dictionary<string, string> { ["format"] = "pt" });

        // 85 bytes of JSON; 8 + 85 = 93, so 3 spaces bring the data area to offset 96.
        var json = """{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""" + "   ";
        var expected = new List<byte> { 88, 0, 0, 0, 0, 0, 0, 0 };
        expected.AddRange(Encoding.ASCII.GetBytes(json));
        expected.AddRange(new byte[] { 0x00, 0x00, 0x80, 0x3F });   // 1.0f  = 0x3F800000
        expected.AddRange(new byte[] { 0x00, 0x00, 0x20, 0xC0 });   // -2.5f = 0xC0200000
        Assert.Equal(expected.ToArray(), File.ReadAllBytes(path));
    }

    [Fact]
    public void Header_without_metadata_is_padded_to_eight_bytes()
    {
        var header = SafeTensorsWriter.BuildHeader([new TensorSpec("a", DType.F32, [2])], null);
        Assert.Equal("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""" + "  ", Encoding.ASCII.GetString(header));
        Assert.Equal(0, (8 + header.Length) % 8);
    }

    [Fact]
    public void Header_offsets_follow_declared_order_and_sizes()
    {
        var header = SafeTensorsWriter.BuildHeader(
            [new TensorSpec("z", DType.BF16, [3]), new TensorSpec("a", DType.I64, [2, 1]), new TensorSpec("s", DType.U8, [])], null);
        var text = Encoding.ASCII.GetString(header).TrimEnd(' ');
        Assert.Equal(
            """{"z":{"dtype":"BF16","shape":[3],"data_offsets":[0,6]},"a":{"dtype":"I64","shape":[2,1],"data_offsets":[6,22]},"s":{"dtype":"U8","shape":[],"data_offsets":[22,23]}}""",
            text);
    }

    [Fact]
    public void Declarations_with_duplicate_or_reserved_names_are_refused()
    {
        Assert.Throws<ArgumentException>(() => SafeTensorsWriter.BuildHeader(
            [new TensorSpec("a", DType.F32, [1]), new TensorSpec("a", DType.F32, [1])], null));
        Assert.Throws<ArgumentException>(() => SafeTensorsWriter.BuildHeader([new TensorSpec("__metadata__", DType.F32, [1])], null));
        Assert.Throws<ArgumentException>(() => SafeTensorsWriter.BuildHeader([new TensorSpec("a", DType.F32, [-1])], null));
    }

    [Fact]
    public void Nothing_is_left_when_disposed_without_commit()
    {
        using var dir = new TempFolder();
        using var scope = torch.NewDisposeScope();
        var path = dir.File("w.safetensors");
        using (var writer = new SafeTensorsWriter(path, [new TensorSpec("a", DType.F32, [2]), new TensorSpec("b", DType.F32, [1])]))
        {
            writer.Write("a", torch.ones(2));
            Assert.Single(dir.Entries());                 // only the hidden temporary file so far
            Assert.StartsWith(".w.safetensors.tmp-", dir.Entries()[0]);
            Assert.False(File.Exists(path));
        }
        Assert.Empty(dir.Entries());
    }

    public static TheoryData<string, Func<torch.Tensor>> BadWrites => new()
    {
        { "b", () => torch.ones(2) },                                   // wrong name (expected "a")
        { "a", () => torch.ones(3) },                                   // wrong shape
        { "a", () => torch.ones(2, dtype: torch.ScalarType.Float16) },  // wrong dtype
        { "a", () => torch.ones(2, dtype: torch.ScalarType.Float64) },  // dtype without a safetensors counterpart
    };

    [Theory]
    [MemberData(nameof(BadWrites))]
    public void Nothing_is_left_when_a_write_throws(string name, Func<torch.Tensor> make)
    {
        using var dir = new TempFolder();
        using var scope = torch.NewDisposeScope();
        var path = dir.File("w.safetensors");
        var writer = new SafeTensorsWriter(path, [new TensorSpec("a", DType.F32, [2])]);
        var e = Record.Exception(() => writer.Write(name, make()));
        Assert.True(e is ArgumentException or InvalidOperationException, e?.ToString());
        Assert.Contains("w.safetensors", e!.Message);
        // The failed write already removed the temporary file, and the writer refuses to go on.
        Assert.Empty(dir.Entries());
        Assert.Throws<InvalidOperationException>(() => writer.Commit());
        writer.Dispose();
        Assert.Empty(dir.Entries());
    }

    [Fact]
    public void Commit_before_every_tensor_is_written_is_refused_and_leaves_nothing()
    {
        using var dir = new TempFolder();
        using var scope = torch.NewDisposeScope();
        var path = dir.File("w.safetensors");
        using var writer = new SafeTensorsWriter(path, [new TensorSpec("a", DType.F32, [2]), new TensorSpec("b", DType.F32, [1])]);
        writer.Write("a", torch.ones(2));
        var e = Assert.Throws<InvalidOperationException>(() => writer.Commit());
        Assert.Contains("'b'", e.Message);
        Assert.Empty(dir.Entries());
    }

    [Fact]
    public void Commit_replaces_an_existing_file_whole()
    {
        using var dir = new TempFolder();
        using var scope = torch.NewDisposeScope();
        var path = dir.File("w.safetensors");
        File.WriteAllText(path, "old contents");
        using (var writer = new SafeTensorsWriter(path, [new TensorSpec("a", DType.F32, [2])]))
        {
            writer.Write("a", torch.full(2, 7f));
            Assert.Equal("old contents", File.ReadAllText(path));   // untouched until commit
            writer.Commit();
        }
        Assert.Equal(new[] { "w.safetensors" }, dir.Entries());
        using var file = SafeTensorsFile.Open(path);
        Assert.Equal(new[] { 7f, 7f }, file.Load("a").data<float>().ToArray());
    }
}
