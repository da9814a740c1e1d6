using System.Text;

namespace Amalgam.Inputs;

/// <summary>
/// Reading untrusted input files with bounded work: only regular files (a FIFO would block forever, a device never
/// ends), symbolic links followed only while they stay inside the input folder, sizes capped before reading, and
/// lines capped while reading. Every refusal is one line naming the file (and line).
/// </summary>
public static class InputFiles
{
    /// <summary>config.json, adapter_config.json, recipes, suite.yaml, router files: real ones are a few KB.</summary>
    public const long MaxConfigBytes = 16 << 20;

    /// <summary>
    /// Tokenizer files (tokenizer.json, tokenizer.model, tokenizer.amalgam.json, tokenizer_config.json, chat
    /// templates): Gemma 3's tokenizer.json, the largest in common use, is 33 MB.
    /// </summary>
    public const long MaxTokenizerBytes = 256L << 20;

    /// <summary>One line of a JSONL split (characters); a real example is a few KB.</summary>
    public const int MaxLineChars = 1 << 20;

    /// <summary>Throws unless <paramref name="path"/> is (or links to) a regular file.</summary>
    public static void RequireRegular(string path)
    {
        var kind = FileKinds.Of(path);
        if (kind == FileKind.SymbolicLink) kind = Followed(path);
        if (kind == FileKind.Regular) return;
        if (kind == FileKind.Missing) throw new FileNotFoundException($"{Names.Escape(path)}: not found", path);
        throw new InvalidDataException($"{Names.Escape(path)}: {FileKinds.Describe(kind)}, not a regular file; refusing to read it");
    }

    static FileKind Followed(string path)
    {
        try
        {
            var target = File.ResolveLinkTarget(path, returnFinalTarget: true);
            return target is null ? FileKind.Missing : FileKinds.Of(target.FullName);
        }
        catch (IOException) { return FileKind.Missing; } // a loop of links
    }

    /// <summary>Reads a whole text file of at most <paramref name="maxBytes"/>, after <see cref="RequireRegular"/>.</summary>
    public static string ReadText(string path, long maxBytes = MaxConfigBytes)
    {
        RequireRegular(path);
        RequireSize(path, maxBytes);
        return File.ReadAllText(path);
    }

    /// <summary>Opens a file the user named (<see cref="RequireRegular"/>) of at most <paramref name="maxBytes"/>.</summary>
    public static FileStream OpenRegular(string path, long maxBytes = MaxConfigBytes)
    {
        RequireRegular(path);
        RequireSize(path, maxBytes);
        return File.OpenRead(path);
    }

    static void RequireSize(string path, long maxBytes)
    {
        long length = new FileInfo(path).Length;
        if (length > maxBytes)
            throw new InvalidDataException($"{Names.Escape(path)}: {length:N0} bytes, more than the {maxBytes:N0} allowed for this kind of file");
    }

    /// <summary>
    /// Throws unless <paramref name="path"/> is a regular file, or a symbolic link to one inside the folder that
    /// holds it (see <see cref="InsideFolder"/>): files of a model folder, which a link must not lead out of.
    /// </summary>
    public static void RequireInFolder(string path)
    {
        RequireRegular(path);
        string full = Path.GetFullPath(path);
        if (FileKinds.Of(full) == FileKind.SymbolicLink && InsideFolder(Path.GetDirectoryName(full)!, Path.GetFileName(full)) is null)
            throw new InvalidDataException($"{Names.Escape(path)}: a symbolic link to {Names.Escape(RealPaths.Of(full))}, outside the folder that holds it; refusing to read it");
    }

    /// <summary>Opens a file of a model folder (<see cref="RequireInFolder"/>) of at most <paramref name="maxBytes"/>.</summary>
    public static FileStream OpenInFolder(string path, long maxBytes = MaxTokenizerBytes)
    {
        RequireInFolder(path);
        RequireSize(path, maxBytes);
        return File.OpenRead(path);
    }

    /// <summary>The text of a file of a model folder (<see cref="RequireInFolder"/>) of at most <paramref name="maxBytes"/>.</summary>
    public static string ReadTextInFolder(string path, long maxBytes = MaxTokenizerBytes)
    {
        RequireInFolder(path);
        RequireSize(path, maxBytes);
        return File.ReadAllText(path);
    }

    /// <summary>
    /// The lines of a text file, each at most <paramref name="maxChars"/> long: a longer line is refused as
    /// <c>file:line</c> without ever being held whole in memory.
    /// </summary>
    public static IEnumerable<string> ReadLines(string path, string shownAs, int maxChars = MaxLineChars)
    {
        RequireRegular(path);
        using var reader = new StreamReader(path, Encoding.UTF8, detectEncodingFromByteOrderMarks: true, bufferSize: 1 << 16);
        var line = new StringBuilder();
        var buffer = new char[1 << 16];
        int lineNo = 1, n;
        bool pendingCr = false;
        while ((n = reader.Read(buffer, 0, buffer.Length)) > 0)
        {
            for (int i = 0; i < n; i++)
            {
                char c = buffer[i];
                if (pendingCr) { pendingCr = false; if (c == '\n') continue; }
                if (c is '\n' or '\r')
                {
                    pendingCr = c == '\r';
                    yield return line.ToString();
                    line.Clear();
                    lineNo++;
                    continue;
                }
                if (line.Length >= maxChars)
                    throw new InvalidDataException($"{Names.Escape(shownAs)}:{lineNo}: line longer than {maxChars:N0} characters; refusing it");
                line.Append(c);
            }
        }
        if (line.Length > 0) yield return line.ToString();
    }

    /// <summary>
    /// The real path of a file to be copied out of <paramref name="folder"/>, or null when it is not a regular file
    /// inside that folder (a symbolic link to /etc/passwd is not copied). Hugging Face cache snapshots link into their
    /// repository's blobs/ folder, so for <c>…/snapshots/REV</c> the repository folder counts as inside.
    /// </summary>
    public static string? InsideFolder(string folder, string file)
    {
        string path = Path.Combine(folder, file);
        var kind = FileKinds.Of(path);
        if (kind == FileKind.Regular) return path;
        if (kind != FileKind.SymbolicLink || Followed(path) != FileKind.Regular) return null;
        string real = RealPaths.Of(path);
        string root = RealPaths.Of(folder);
        if (Path.GetFileName(Path.GetDirectoryName(root)) == "snapshots") root = Path.GetDirectoryName(Path.GetDirectoryName(root))!;
        return real.StartsWith(root + "/", StringComparison.Ordinal) ? real : null;
    }
}
