using System.Text.Json;

namespace Amalgam.Models;

/// <summary>Reads a JSON configuration file into its mirror class, with one-line errors naming the file and field.</summary>
public static class JsonConfigFile
{
    /// <param name="file">the JSON file</param>
    /// <param name="missingHint">what the user probably pointed at, for the "not found" message</param>
    public static T Read<T>(string file, string missingHint) where T : class
    {
        if (!File.Exists(file)) throw new FileNotFoundException($"{file}: not found ({missingHint})", file);
        T? value;
        try
        {
            value = JsonSerializer.Deserialize<T>(Inputs.InputFiles.ReadText(file));
        }
        catch (JsonException e)
        {
            string at = e.Path is null ? "" : $" at '{e.Path.TrimStart('$', '.')}'";
            throw new InvalidDataException($"{file}: invalid JSON or field type{at}: {e.Message.Split('\n')[0].Trim()}");
        }
        catch (InvalidOperationException e) // a lone UTF-16 surrogate in a string
        {
            throw new InvalidDataException($"{file}: invalid text in a string ({e.Message.Split('\n')[0].Trim()})");
        }
        return value ?? throw new InvalidDataException($"{file}: empty configuration");
    }
}
