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
    /// Renders chat messages into the prompt text, encoded as it is (no BOS added: the template writes its own, as
    /// <c>amalgam generate --chat</c> encodes it). Null: <see cref="ChatTemplateFile"/>, else the model folder's
    /// chat template; with none, chat requests get a 400 naming <c>messages</c>.
    /// </summary>
    public Func<IReadOnlyList<Api.ChatMessage>, string>? ChatRenderer { get; init; }

    /// <summary>A Jinja chat template file used instead of the model's (<c>--chat-template FILE</c>).</summary>
    public string? ChatTemplateFile { get; init; }

    /// <summary>An OpenAI-compatible server to forward requests to (gateway mode, <c>--upstream URL</c>).</summary>
    public Uri? Upstream { get; init; }

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
