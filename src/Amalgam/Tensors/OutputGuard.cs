using Amalgam.Inputs;

namespace Amalgam.Tensors;

/// <summary>
/// An output replaces its whole folder, so it must never be, contain or lie inside one of its inputs, nor be or
/// contain the current folder. Paths are compared after resolving symbolic links (of the longest existing prefix).
/// </summary>
public static class OutputGuard
{
    /// <summary>Throws naming both paths when <paramref name="output"/> overlaps an input or the current folder.</summary>
    public static void Check(string output, IEnumerable<string?> inputs)
    {
        string o = RealPaths.Of(output);
        foreach (var input in inputs)
        {
            if (string.IsNullOrEmpty(input)) continue;
            string i = RealPaths.Of(input);
            string? relation = o == i ? "is the input" : Inside(o, i) ? "lies inside the input" : Inside(i, o) ? "contains the input" : null;
            if (relation is not null)
                throw new IOException($"{Names.Escape(output)}: the output folder {relation} {Names.Escape(input)}; choose an output outside every input");
        }
        CheckNotCurrentFolder(output);
    }

    /// <summary>Replacing a folder that is or holds the current folder would pull the ground from under the caller.</summary>
    public static void CheckNotCurrentFolder(string output)
    {
        string o = RealPaths.Of(output), cwd = RealPaths.Of(Directory.GetCurrentDirectory());
        if (o == cwd || Inside(cwd, o))
            throw new IOException($"{Names.Escape(output)}: the output folder {(o == cwd ? "is" : "contains")} the current folder ({Names.Escape(cwd)}); choose a new folder for the output");
    }

    static bool Inside(string child, string parent) =>
        child.StartsWith(parent.EndsWith('/') ? parent : parent + "/", StringComparison.Ordinal);
}
