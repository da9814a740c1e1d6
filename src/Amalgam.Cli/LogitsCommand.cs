using System.CommandLine;
using System.Text.Json;

namespace Amalgam.Cli;

/// <summary><c>amalgam logits</c>: the float32 logits of the last position, as one JSON object on stdout.</summary>
public static class LogitsCommand
{
    public static Command Create()
    {
        var models = new ModelOptions();
        var ids = new Option<string>("--ids") { Description = "Comma-separated token ids, e.g. 1,2,3.", Required = true };
        var all = new Option<bool>("--all-positions") { Description = "Print logits of every position ([positions][vocab]) instead of the last." };
        var truncate = TruncateOption.Create();
        var command = new Command("logits", "Print the logits of the last position as {\"logits\": [...]}.");
        models.AddTo(command);
        command.Options.Add(ids);
        command.Options.Add(all);
        command.Options.Add(truncate);
        command.SetAction(CliErrors.Guard(parse =>
        {
            var tokens = ParseIds(parse.GetValue(ids)!);
            var (model, adapters) = models.Load(parse);
            using var _ = model;
            try
            {
                foreach (var t in tokens)
                    if (t < 0 || t >= model.Config.VocabSize) throw new ArgumentException($"--ids: token {t} is outside the vocabulary [0, {model.Config.VocabSize})");
                tokens = [.. Amalgam.Models.ContextFit.Fit(model.Config, tokens, 0, TruncateOption.Get(parse, truncate), "--ids", "")];
                using var logits = model.Logits(tokens);
                var rows = Enumerable.Range(0, (int)logits.shape[0]).Select(i => logits[i].data<float>().ToArray()).ToList();
                // JSON has no NaN or Infinity: say where the first one is instead of printing half an object.
                for (int p = 0; p < rows.Count; p++)
                    if (Array.FindIndex(rows[p], v => !float.IsFinite(v)) is var j and >= 0)
                        throw new InvalidDataException($"logits: position {p}, token {j} is {rows[p][j]}; the model (or an adapter) produced non-finite values and nothing was printed");
                using var stdout = Console.OpenStandardOutput();
                using var json = new Utf8JsonWriter(stdout);
                json.WriteStartObject();
                json.WritePropertyName("logits");
                if (parse.GetValue(all))
                {
                    json.WriteStartArray();
                    foreach (var row in rows) WriteRow(json, row);
                    json.WriteEndArray();
                }
                else WriteRow(json, rows[^1]);
                json.WriteEndObject();
                json.Flush();
                stdout.WriteByte((byte)'\n');
            }
            finally
            {
                foreach (var a in adapters) a.Dispose();
            }
            return 0;
        }));
        return command;
    }

    static void WriteRow(Utf8JsonWriter json, float[] row)
    {
        json.WriteStartArray();
        foreach (var v in row) json.WriteNumberValue(v);
        json.WriteEndArray();
    }

    public static long[] ParseIds(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        var result = new long[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!long.TryParse(parts[i], out result[i]))
                throw new ArgumentException($"--ids: '{parts[i]}' is not an integer token id (expected e.g. 1,2,3)");
        return result;
    }
}
