using System.Text;
using System.Text.Json;

namespace Amalgam.Tensors;

/// <summary>A parsed and fully validated safetensors header.</summary>
internal sealed class SafeTensorsHeader
{
    /// <summary>Headers beyond this are refused rather than parsed: real ones are a few hundred KB at most.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    public const string MetadataKey = "__metadata__";

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private SafeTensorsHeader(long headerLength, List<TensorInfo> tensors, Dictionary<string, string> metadata)
    {
        HeaderLength = headerLength;
        Tensors = tensors;
        Metadata = metadata;
    }

    /// <summary>N, the JSON length; the data area starts at 8 + N.</summary>
    public long HeaderLength { get; }

    public long DataStart => 8 + HeaderLength;

    /// <summary>Sorted by data offset.</summary>
    public List<TensorInfo> Tensors { get; }

    public Dictionary<string, string> Metadata { get; }

    /// <summary>Reads and validates the header from the start of <paramref name="stream"/>, trusting nothing in it.</summary>
    public static SafeTensorsHeader Read(Stream stream, string path)
    {
        long fileLength = stream.Length;
        if (fileLength < 8)
            throw Fail(path, $"file is {fileLength} bytes, too short for the 8-byte header length");

        Span<byte> prefix = stackalloc byte[8];
        stream.Position = 0;
        stream.ReadExactly(prefix);
        ulong n = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (n > MaxHeaderBytes)
            throw Fail(path, $"header length {n} exceeds the {MaxHeaderBytes}-byte cap");
        if (8 + (long)n > fileLength)
            throw Fail(path, $"header length {n} runs past the end of the file ({fileLength} bytes)");

        var json = new byte[n];
        stream.ReadExactly(json);
        return Parse(json, fileLength - 8 - (long)n, path);
    }

    private static SafeTensorsHeader Parse(byte[] json, long dataLength, string path)
    {
        try
        {
            StrictUtf8.GetCharCount(json);
        }
        catch (DecoderFallbackException)
        {
            throw Fail(path, "header is not valid UTF-8");
        }

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw Fail(path, $"header is not valid JSON ({e.Message})");
        }

        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw Fail(path, $"header is a JSON {Kind(root)}, expected an object");

            try
            {
                return Entries(root, json.Length, dataLength, path);
            }
            catch (InvalidOperationException)
            {
                // System.Text.Json reading a name or string with "\ud800" and no low surrogate after it.
                throw Fail(path, "a name or string holds a lone UTF-16 surrogate (an escape such as \\ud800 without its pair)");
            }
        }
    }

    private static SafeTensorsHeader Entries(JsonElement root, int headerLength, long dataLength, string path)
    {
        {
            var tensors = new List<TensorInfo>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in root.EnumerateObject())
            {
                // JsonDocument keeps duplicate keys; a second definition must not silently win.
                if (!seen.Add(property.Name))
                    throw Fail(path, property.Name == MetadataKey
                        ? $"field '{MetadataKey}' appears twice"
                        : $"tensor {Q(property.Name)} appears twice in the header");

                if (property.Name == MetadataKey)
                    ReadMetadata(property.Value, metadata, path);
                else
                    tensors.Add(ReadTensor(property.Name, property.Value, dataLength, path));
            }

            tensors.Sort(static (a, b) =>
            {
                int c = a.Begin.CompareTo(b.Begin);
                if (c == 0) c = a.End.CompareTo(b.End);
                return c != 0 ? c : string.CompareOrdinal(a.Name, b.Name);
            });
            CheckNoOverlap(tensors, path);
            return new SafeTensorsHeader(headerLength, tensors, metadata);
        }
    }

    private static void ReadMetadata(JsonElement value, Dictionary<string, string> metadata, string path)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw Fail(path, $"field '{MetadataKey}' is a JSON {Kind(value)}, expected an object of strings");
        foreach (var entry in value.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
                throw Fail(path, $"field '{MetadataKey}': value of {Q(entry.Name)} is a JSON {Kind(entry.Value)}, expected a string");
            if (!metadata.TryAdd(entry.Name, entry.Value.GetString()!))
                throw Fail(path, $"field '{MetadataKey}': key {Q(entry.Name)} appears twice");
        }
    }

    private static TensorInfo ReadTensor(string name, JsonElement value, long dataLength, string path)
    {
        string where = $"tensor {Q(name)}";
        if (value.ValueKind != JsonValueKind.Object)
            throw Fail(path, $"{where}: entry is a JSON {Kind(value)}, expected an object");

        var dtypeElement = Field(value, "dtype", JsonValueKind.String, where, path);
        var dtypeName = dtypeElement.GetString()!;
        if (!DTypeExtensions.TryParseSafeTensorsName(dtypeName, out var dtype))
            throw Fail(path, $"{where}: unknown dtype {Q(dtypeName)} (supported: {DTypeExtensions.SupportedNames})");

        var shapeElement = Field(value, "shape", JsonValueKind.Array, where, path);
        var shape = new long[shapeElement.GetArrayLength()];
        int i = 0;
        foreach (var dim in shapeElement.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out var d))
                throw Fail(path, $"{where}: field 'shape' element {i} is {Describe(dim)}, expected an integer");
            if (d < 0)
                throw Fail(path, $"{where}: field 'shape' element {i} is {d}, expected a non-negative integer");
            shape[i++] = d;
        }

        var offsetsElement = Field(value, "data_offsets", JsonValueKind.Array, where, path);
        if (offsetsElement.GetArrayLength() != 2)
            throw Fail(path, $"{where}: field 'data_offsets' has {offsetsElement.GetArrayLength()} elements, expected [begin, end]");
        var offsets = new long[2];
        i = 0;
        foreach (var o in offsetsElement.EnumerateArray())
        {
            if (o.ValueKind != JsonValueKind.Number || !o.TryGetInt64(out var v) || v < 0)
                throw Fail(path, $"{where}: field 'data_offsets' element {i} is {Describe(o)}, expected a non-negative integer");
            offsets[i++] = v;
        }
        long begin = offsets[0], end = offsets[1];

        int size = dtype.ElementSize();
        long expected;
        try
        {
            expected = checked(TensorSpec.Product(shape) * size);
        }
        catch (OverflowException)
        {
            throw Fail(path, $"{where}: shape {TensorSpec.FormatShape(shape)} × {dtype.SafeTensorsName()} overflows a 64-bit byte count");
        }

        if (begin > end)
            throw Fail(path, $"{where}: data_offsets [{begin}, {end}] end before they begin");
        if (expected != end - begin)
            throw Fail(path, $"{where}: shape {TensorSpec.FormatShape(shape)} × {dtype.SafeTensorsName()} ({size} bytes) = {expected} bytes but data_offsets span {end - begin}");
        if (end > dataLength)
            throw Fail(path, $"{where}: data_offsets [{begin}, {end}] run past the data area ({dataLength} bytes)");

        return new TensorInfo(name, dtype, shape, begin, end);
    }

    private static JsonElement Field(JsonElement entry, string field, JsonValueKind kind, string where, string path)
    {
        if (!entry.TryGetProperty(field, out var value))
            throw Fail(path, $"{where}: field '{field}' is missing");
        if (value.ValueKind != kind)
            throw Fail(path, $"{where}: field '{field}' is a JSON {Kind(value)}, expected {(kind == JsonValueKind.Array ? "an array" : "a string")}");
        return value;
    }

    /// <summary>Tensors are sorted by Begin; a range starting before the furthest end seen so far overlaps it.</summary>
    private static void CheckNoOverlap(List<TensorInfo> sorted, string path)
    {
        TensorInfo? furthest = null;
        foreach (var t in sorted)
        {
            if (t.Begin == t.End) continue; // an empty range holds no bytes to share
            if (furthest is not null && t.Begin < furthest.End)
                throw Fail(path, $"tensor {Q(t.Name)} [{t.Begin}, {t.End}) overlaps tensor {Q(furthest.Name)} [{furthest.Begin}, {furthest.End})");
            if (furthest is null || t.End > furthest.End) furthest = t;
        }
    }

    private static string Kind(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "object",
        JsonValueKind.Array => "array",
        JsonValueKind.String => "string",
        JsonValueKind.Number => "number",
        JsonValueKind.True or JsonValueKind.False => "boolean",
        JsonValueKind.Null => "null",
        _ => "value",
    };

    private static string Describe(JsonElement e) =>
        e.ValueKind == JsonValueKind.Number ? Truncate(e.GetRawText()) : $"a JSON {Kind(e)}";

    private static string Truncate(string s) => s.Length <= 40 ? s : s[..40] + "…";

    private static string Q(string name) => FormatError.Quote(name);

    private static InvalidDataException Fail(string path, string problem) => FormatError.Create(path, problem);
}
