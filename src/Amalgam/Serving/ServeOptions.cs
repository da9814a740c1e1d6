using Amalgam.Serving.Engine;

namespace Amalgam.Serving;

/// <summary>
/// What <c>amalgam serve</c> serves and how: the base folder, adapters and saved strategies by served name, the
/// address (loopback by default; port 0 picks a free one), engine limits and an optional API key.
/// </summary>
public sealed record ServeOptions(string ModelDir)
{
    public IReadOnlyList<(string Name, string Dir)> Adapters { get; init; } = [];
    public IReadOnlyList<(string Name, string Dir)> Strategies { get; init; } = [];
    public string Host { get; init; } = "127.0.0.1";
    public int Port { get; init; } = 8000;
    public EngineOptions Engine { get; init; } = new();
    public string? ApiKey { get; init; }

    /// <summary>
    /// Renders chat messages into the prompt text (the model's chat template); null: chat requests get a 400
    /// naming <c>messages</c>.
    /// </summary>
    public Func<IReadOnlyList<Api.ChatMessage>, string>? ChatRenderer { get; init; }

    /// <summary>The base's name in <c>model</c> (default: the folder's name).</summary>
    public string? ServedModelName { get; init; }

    /// <summary>Parses <c>NAME=DIR</c> (or a bare DIR, named after its folder) for --adapter and --strategy.</summary>
    public static (string Name, string Dir) NamedFolder(string option, string value)
    {
        int eq = value.IndexOf('=');
        if (eq == 0) throw new ArgumentException($"{option}: '{value}': the name before '=' is empty");
        if (eq < 0) return (Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(value))), value);
        string dir = value[(eq + 1)..];
        if (dir.Length == 0) throw new ArgumentException($"{option}: '{value}': the folder after '=' is empty");
        return (value[..eq], dir);
    }
}
