using System.Text;
using Amalgam.Tensors;

namespace Amalgam.Tests.Tensors;

/// <summary>Each defect a header can have, refused with a one-line message naming the file and the tensor or field.</summary>
public class SafeTensorsHeaderValidationTests
{
    private const string Ok = """{"dtype":"F32","shape":[2],"data_offsets":[0,8]}""";

    public static TheoryData<string, string, string> BadHeaders => new()
    {
        // case (also the file name), header JSON, text the message must contain besides the file name
        { "not-utf8", "{\"w\xFF\":1}", "not valid UTF-8" },
        { "not-json", "{\"w\": ", "not valid JSON" },
        { "array", "[1,2]", "expected an object" },
        { "entry-not-object", """{"w":3}""", "tensor 'w': entry is a JSON number" },
        { "dtype-missing", """{"w":{"shape":[2],"data_offsets":[0,8]}}""", "tensor 'w': field 'dtype' is missing" },
        { "dtype-not-string", """{"w":{"dtype":4,"shape":[2],"data_offsets":[0,8]}}""", "tensor 'w': field 'dtype' is a JSON number" },
        { "dtype-unknown", """{"w":{"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]}}""", "tensor 'w': unknown dtype 'F8_E4M3'" },
        { "shape-missing", """{"w":{"dtype":"F32","data_offsets":[0,8]}}""", "tensor 'w': field 'shape' is missing" },
        { "shape-not-array", """{"w":{"dtype":"F32","shape":"2","data_offsets":[0,8]}}""", "tensor 'w': field 'shape' is a JSON string" },
        { "shape-negative", """{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}""", "tensor 'w': field 'shape' element 0 is -2" },
        { "shape-fraction", """{"w":{"dtype":"F32","shape":[2, 1.5],"data_offsets":[0,8]}}""", "tensor 'w': field 'shape' element 1 is 1.5" },
        { "shape-overflow", """{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}""", "tensor 'w': shape [4294967296, 4294967296] × F32 overflows" },
        { "offsets-missing", """{"w":{"dtype":"F32","shape":[2]}}""", "tensor 'w': field 'data_offsets' is missing" },
        { "offsets-not-array", """{"w":{"dtype":"F32","shape":[2],"data_offsets":{}}}""", "tensor 'w': field 'data_offsets' is a JSON object" },
        { "offsets-one", """{"w":{"dtype":"F32","shape":[2],"data_offsets":[8]}}""", "tensor 'w': field 'data_offsets' has 1 elements" },
        { "offsets-negative", """{"w":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}""", "tensor 'w': field 'data_offsets' element 0 is -8" },
        { "offsets-reversed", """{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}""", "tensor 'w': data_offsets [8, 0] end before they begin" },
        { "size-mismatch", """{"model.norm.weight":{"dtype":"F32","shape":[32],"data_offsets":[0,124]}}""",
            "tensor 'model.norm.weight': shape [32] × F32 (4 bytes) = 128 bytes but data_offsets span 124" },
        { "past-data", """{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", "tensor 'w': data_offsets [0, 16] run past the data area (8 bytes)" },
        { "overlap", """{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}""",
            "tensor 'b' [2, 6) overlaps tensor 'a' [0, 4)" },
        { "overlap-nested", """{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},"c":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}""",
            "tensor 'b' [1, 2) overlaps tensor 'a' [0, 8)" },
        { "duplicate", """{"w":""" + Ok + ""","w":""" + Ok + "}", "tensor 'w' appears twice" },
        { "metadata-not-object", """{"__metadata__":"pt","w":""" + Ok + "}", "field '__metadata__' is a JSON string" },
        { "metadata-value", """{"__metadata__":{"format":"pt","step":3},"w":""" + Ok + "}", "field '__metadata__': value of 'step' is a JSON number" },
        { "newline-name", """{"bad\nname":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", @"tensor 'bad\u000Aname'" },
    };

    [Theory]
    [MemberData(nameof(BadHeaders))]
    public void Malformed_header_is_refused(string name, string header, string expected)
    {
        using var dir = new TempFolder();
        // Latin-1 keeps the deliberate 0xFF byte of the UTF-8 case as one byte; the other headers are ASCII.
        var bytes = name == "not-utf8" ? Encoding.Latin1.GetBytes(header) : Encoding.UTF8.GetBytes(header);
        var path = dir.WriteRaw(name + ".safetensors", bytes, new byte[8]);

        AssertRefused(path, name + ".safetensors", expected);
    }

    [Fact]
    public void File_shorter_than_the_length_prefix_is_refused()
    {
        using var dir = new TempFolder();
        var path = dir.File("short.safetensors");
        File.WriteAllBytes(path, [1, 0, 0, 0, 0]);
        AssertRefused(path, "short.safetensors", "file is 5 bytes, too short");
    }

    [Fact]
    public void Header_length_past_the_end_of_the_file_is_refused()
    {
        using var dir = new TempFolder();
        var path = dir.WriteRaw("long.safetensors", Encoding.UTF8.GetBytes("{}"), declaredLength: 1000);
        AssertRefused(path, "long.safetensors", "header length 1000 runs past the end of the file (10 bytes)");
    }

    [Fact]
    public void Header_length_above_the_cap_is_refused()
    {
        using var dir = new TempFolder();
        var path = dir.WriteRaw("huge.safetensors", Encoding.UTF8.GetBytes("{}"), declaredLength: 200_000_000);
        AssertRefused(path, "huge.safetensors", "header length 200000000 exceeds the 100000000-byte cap");
    }

    [Fact]
    public void Empty_header_object_is_a_valid_empty_file()
    {
        using var dir = new TempFolder();
        var path = dir.WriteRaw("empty.safetensors", "{}        ");
        using var file = SafeTensorsFile.Open(path);
        Assert.Empty(file.Tensors);
        Assert.Empty(file.Metadata);
    }

    [Fact]
    public void Zero_length_tensors_may_share_an_offset()
    {
        using var dir = new TempFolder();
        var path = dir.WriteRaw("zeros.safetensors",
            """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"e":{"dtype":"F32","shape":[0,5],"data_offsets":[4,4]}}""", new byte[8]);
        using var file = SafeTensorsFile.Open(path);
        Assert.Equal(2, file.Tensors.Count);
    }

    private static void AssertRefused(string path, string fileName, string expected)
    {
        var e = Assert.Throws<InvalidDataException>(() => SafeTensorsFile.Open(path).Dispose());
        Assert.StartsWith(fileName + ": ", e.Message);
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.DoesNotContain('\r', e.Message);
    }
}
