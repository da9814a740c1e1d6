using TorchSharp;

namespace Amalgam.Tensors;

/// <summary>Element types Amalgam reads from and writes to safetensors files.</summary>
public enum DType
{
    F32,
    F16,
    BF16,
    I64,
    I32,
    U8,
    BOOL,
}

public static class DTypeExtensions
{
    /// <summary>The names accepted in a header, for error messages.</summary>
    public static readonly string SupportedNames = string.Join(", ", Enum.GetNames<DType>());

    /// <summary>Bytes per element as stored in the file (BOOL is one byte, as in PyTorch).</summary>
    public static int ElementSize(this DType dtype) => dtype switch
    {
        DType.F32 => 4,
        DType.F16 => 2,
        DType.BF16 => 2,
        DType.I64 => 8,
        DType.I32 => 4,
        DType.U8 => 1,
        DType.BOOL => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null),
    };

    /// <summary>The dtype string used in safetensors headers.</summary>
    public static string SafeTensorsName(this DType dtype) => dtype switch
    {
        DType.F32 => "F32",
        DType.F16 => "F16",
        DType.BF16 => "BF16",
        DType.I64 => "I64",
        DType.I32 => "I32",
        DType.U8 => "U8",
        DType.BOOL => "BOOL",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null),
    };

    /// <summary>Parses a header dtype string; exact, case-sensitive match as the format defines.</summary>
    public static bool TryParseSafeTensorsName(string name, out DType dtype)
    {
        switch (name)
        {
            case "F32": dtype = DType.F32; return true;
            case "F16": dtype = DType.F16; return true;
            case "BF16": dtype = DType.BF16; return true;
            case "I64": dtype = DType.I64; return true;
            case "I32": dtype = DType.I32; return true;
            case "U8": dtype = DType.U8; return true;
            case "BOOL": dtype = DType.BOOL; return true;
            default: dtype = default; return false;
        }
    }

    public static DType ParseSafeTensorsName(string name) =>
        TryParseSafeTensorsName(name, out var dtype)
            ? dtype
            : throw new FormatException($"unknown safetensors dtype '{name}' (supported: {SupportedNames})");

    public static torch.ScalarType ToScalarType(this DType dtype) => dtype switch
    {
        DType.F32 => torch.ScalarType.Float32,
        DType.F16 => torch.ScalarType.Float16,
        DType.BF16 => torch.ScalarType.BFloat16,
        DType.I64 => torch.ScalarType.Int64,
        DType.I32 => torch.ScalarType.Int32,
        DType.U8 => torch.ScalarType.Byte,
        DType.BOOL => torch.ScalarType.Bool,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null),
    };

    public static bool TryToDType(this torch.ScalarType scalarType, out DType dtype)
    {
        switch (scalarType)
        {
            case torch.ScalarType.Float32: dtype = DType.F32; return true;
            case torch.ScalarType.Float16: dtype = DType.F16; return true;
            case torch.ScalarType.BFloat16: dtype = DType.BF16; return true;
            case torch.ScalarType.Int64: dtype = DType.I64; return true;
            case torch.ScalarType.Int32: dtype = DType.I32; return true;
            case torch.ScalarType.Byte: dtype = DType.U8; return true;
            case torch.ScalarType.Bool: dtype = DType.BOOL; return true;
            default: dtype = default; return false;
        }
    }

    public static DType ToDType(this torch.ScalarType scalarType) =>
        TryToDType(scalarType, out var dtype)
            ? dtype
            : throw new NotSupportedException($"torch dtype {scalarType} has no safetensors counterpart here (supported: {SupportedNames})");
}
