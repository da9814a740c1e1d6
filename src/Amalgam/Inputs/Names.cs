using System.Globalization;
using System.Text;

namespace Amalgam.Inputs;

/// <summary>
/// Names from files (tensor names, paths, keys) printed to a terminal: control characters, lone surrogates and
/// invisible format characters are shown as \u000A, \u001B or \u200E so that a name cannot move the cursor,
/// recolour the terminal or hide itself. A name without such characters prints as it is (backslashes too; in an
/// escaped name they are doubled, so the escapes stay unambiguous).
/// </summary>
public static class Names
{
    public static string Escape(string? name)
    {
        if (name is null) return "";
        if (!NeedsEscaping(name)) return name;
        var s = new StringBuilder(name.Length + 8);
        for (int i = 0; i < name.Length; i++)
        {
            char c = name[i];
            if (char.IsHighSurrogate(c) && i + 1 < name.Length && char.IsLowSurrogate(name[i + 1])) { s.Append(c).Append(name[++i]); continue; }
            if (c != '\\' && !IsHidden(c)) { s.Append(c); continue; }
            s.Append(c == '\\' ? "\\\\" : $"\\u{(int)c:X4}");
        }
        return s.ToString();
    }

    static bool NeedsEscaping(string s)
    {
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c is >= ' ' and < '\u007f') continue;
            if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { i++; continue; }
            if (IsHidden(c)) return true;
        }
        return false;
    }

    /// <summary>Control, format, separator, unassigned and private-use characters, and lone surrogates.</summary>
    static bool IsHidden(char c) =>
        c < ' ' || c == '\u007f' || char.IsSurrogate(c) || char.GetUnicodeCategory(c) is UnicodeCategory.Control or UnicodeCategory.Format
            or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator or UnicodeCategory.OtherNotAssigned or UnicodeCategory.PrivateUse;
}
