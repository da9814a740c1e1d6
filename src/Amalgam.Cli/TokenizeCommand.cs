using System.CommandLine;
using System.Text.Encodings.Web;
using System.Text.Json;
using Amalgam.Tokenizers;
using Amalgam.Tokenizers.ChatTemplates;

namespace Amalgam.Cli;

/// <summary><c>amalgam tokenize</c>: text to ids and pieces, ids back to text, or a conversation through the chat template.</summary>
public static class TokenizeCommand
{
    private static readonly JsonSerializerOptions Json = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model folder with tokenizer.json, tokenizer.model or tokenizer.amalgam.json.", Required = true };
        var text = new Option<string>("--text") { Description = "Text to encode, with the special tokens the tokenizer files add." };
        var decode = new Option<string>("--decode") { Description = "Comma-separated ids to decode, e.g. 1,2,3." };
        var skipSpecial = new Option<bool>("--skip-special-tokens") { Description = "With --decode: leave out special tokens (BOS, EOS, ...)." };
        var chat = new Option<string>("--chat") { Description = "JSON list of {\"role\", \"content\"} messages to render with the model's chat template." };
        var generationPrompt = new Option<bool>("--add-generation-prompt") { Description = "With --chat: end with the template's assistant prompt." };
        var json = new Option<bool>("--json") { Description = "Print JSON: {\"ids\", \"pieces\"}, {\"text\"}, or {\"text\", \"ids\"} with --chat." };
        var command = new Command("tokenize", "Encode text to ids and pieces, decode ids, or render a conversation with the chat template.");
        foreach (var o in new Option[] { model, text, decode, skipSpecial, chat, generationPrompt, json }) command.Options.Add(o);
        command.SetAction(CliErrors.Guard(parse =>
        {
            var given = new[] { ("--text", parse.GetValue(text) is not null), ("--decode", parse.GetValue(decode) is not null), ("--chat", parse.GetValue(chat) is not null) }
                .Where(g => g.Item2).Select(g => g.Item1).ToList();
            if (given.Count != 1) throw new ArgumentException($"give exactly one of --text, --decode and --chat (got {(given.Count == 0 ? "none" : string.Join(", ", given))})");
            var dir = parse.GetValue(model)!;
            var tokenizer = TokenizerLoader.Load(dir);
            bool asJson = parse.GetValue(json);

            if (parse.GetValue(text) is { } input)
            {
                var ids = tokenizer.EncodeWithSpecialTokens(input);
                var pieces = ids.Select(id => tokenizer.IdToToken(id) ?? "").ToList();
                if (asJson) Console.WriteLine(JsonSerializer.Serialize(new { ids, pieces }, Json));
                else for (int i = 0; i < ids.Count; i++) Console.WriteLine($"{ids[i]}\t{Escape(pieces[i])}");
            }
            else if (parse.GetValue(decode) is { } list)
            {
                var ids = ParseIds(list);
                string decoded;
                try
                {
                    decoded = tokenizer.Decode(ids, parse.GetValue(skipSpecial));
                }
                catch (ArgumentOutOfRangeException e)
                {
                    throw new ArgumentException($"--decode: {e.ActualValue} is not a token id of {tokenizer.Source}");
                }
                if (asJson) Console.WriteLine(JsonSerializer.Serialize(new { text = decoded }, Json));
                else Console.WriteLine(decoded);
            }
            else
            {
                var messages = ChatMessages.Read(parse.GetValue(chat)!);
                var rendered = ChatTemplate.Load(dir).Render(messages, parse.GetValue(generationPrompt));
                // The template writes the special tokens itself (as apply_chat_template(tokenize=True) assumes).
                var ids = tokenizer.Encode(rendered, addBos: false);
                if (asJson) Console.WriteLine(JsonSerializer.Serialize(new { text = rendered, ids }, Json));
                else Console.Write(rendered.EndsWith('\n') ? rendered : rendered + "\n");
            }
            return 0;
        }));
        return command;
    }

    private static List<int> ParseIds(string list)
    {
        var ids = new List<int>();
        foreach (var part in list.Split(',', StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, out var id) || id < 0) throw new ArgumentException($"--decode: \"{part}\" is not a token id (expected comma-separated non-negative integers)");
            ids.Add(id);
        }
        return ids;
    }

    private static string Escape(string piece) => piece.Replace("\\", "\\\\").Replace("\n", "\\n").Replace("\r", "\\r").Replace("\t", "\\t");
}
