using Amalgam.Inputs;

namespace Amalgam.Tensors;

/// <summary>
/// Builds the <see cref="InvalidDataException"/> (a sealed type) thrown for a defective safetensors file or index:
/// one line, starting with the file name, naming the tensor or field at fault.
/// </summary>
internal static class FormatError
{
    public static InvalidDataException Create(string path, string problem) =>
        new(OneLine($"{Path.GetFileName(path)}: {problem}"));

    /// <summary>Quotes a name from an untrusted header so it cannot break the message across lines or flood it.</summary>
    public static string Quote(string name)
    {
        const int max = 200;
        var shown = name.Length > max ? name[..max] + "…" : name;
        return $"'{Names.Escape(shown)}'";
    }

    private static string OneLine(string message) =>
        message.Replace("\r\n", " ").Replace('\n', ' ').Replace('\r', ' ');
}
