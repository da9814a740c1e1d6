using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Amalgam.Merging.Recipes;

/// <summary>Scalars as <see cref="MergeRecipe.ToYaml"/> writes them: plain when they read back as the same string, else JSON-quoted (valid YAML).</summary>
internal static partial class YamlText
{
    [GeneratedRegex(@"^[A-Za-z_][A-Za-z0-9_./+-]*$")]
    private static partial Regex PlainPattern();

    public static string Scalar(string s) =>
        PlainPattern().IsMatch(s) && s is not ("true" or "false" or "True" or "False" or "TRUE" or "FALSE" or "null" or "Null" or "NULL" or "y" or "n" or "yes" or "no" or "on" or "off")
        && !double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out _) ? s : Quote(s);

    public static string Quote(string s) => JsonSerializer.Serialize(s);
}
