using System.CommandLine;
using System.Text.Json;
using Amalgam.Models;
using Amalgam.Tokenizers;
using Amalgam.Tokenizers.ChatTemplates;

namespace Amalgam.Cli;

/// <summary><c>amalgam generate</c>: greedy continuation of a prompt or of a chat rendered with the model's template.</summary>
public static class GenerateCommand
{
    public static Command Create()
    {
        var models = new ModelOptions();
        var prompt = new Option<string>("--prompt") { Description = "Text to continue (BOS added)." };
        var chat = new Option<string>("--chat") { Description = "Instead of --prompt: a JSON list of {\"role\", \"content\"} messages, rendered with the model's chat template and its generation prompt." };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Most tokens to generate (stops earlier at end of sequence).", DefaultValueFactory = _ => 32 };
        var json = new Option<bool>("--json") { Description = "Print {\"prompt_ids\", \"ids\", \"text\"} instead of the text." };
        var command = new Command("generate", "Greedy decoding from a prompt (KV cache; stops at the end-of-sequence token).");
        models.AddTo(command);
        command.Options.Add(prompt);
        command.Options.Add(chat);
        command.Options.Add(maxNew);
        command.Options.Add(json);
        command.SetAction(CliErrors.Guard(parse =>
        {
            int max = parse.GetValue(maxNew);
            if (max < 0) throw new ArgumentException($"--max-new-tokens: must be 0 or more, got {max}");
            if ((parse.GetValue(prompt) is null) == (parse.GetValue(chat) is null)) throw new ArgumentException("give exactly one of --prompt and --chat");
            var tokenizer = TokenizerLoader.Load(parse.GetValue(models.Model)!);
            // The chat template writes BOS itself, so its text is encoded without adding one.
            var promptIds = (parse.GetValue(chat) is { } chatFile
                    ? tokenizer.Encode(ChatTemplate.Load(parse.GetValue(models.Model)!).Render(ChatMessages.Read(chatFile), addGenerationPrompt: true), addBos: false)
                    : tokenizer.Encode(parse.GetValue(prompt)!, addBos: true))
                .Select(i => (long)i).ToList();
            if (promptIds.Count == 0) throw new ArgumentException(parse.GetValue(chat) is null ? "--prompt: encodes to no tokens" : "--chat: renders to no tokens");
            var (model, adapters) = models.Load(parse);
            using var _ = model;
            try
            {
                var stops = model.Config.EosTokenIds.Select(i => (long)i).ToHashSet();
                if (tokenizer.EosId is int eos) stops.Add(eos);
                var ids = GreedyDecoder.Generate(model, [promptIds], max, stops, model.Config.PadId ?? tokenizer.PadId ?? 0)[0];
                string text = tokenizer.Decode(ids.Select(i => (int)i));
                if (parse.GetValue(json))
                    Console.WriteLine(JsonSerializer.Serialize(new { prompt_ids = promptIds, ids, text }));
                else
                    Console.WriteLine(text);
            }
            finally
            {
                foreach (var a in adapters) a.Dispose();
            }
            return 0;
        }));
        return command;
    }
}
