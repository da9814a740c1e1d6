using System.CommandLine;
using System.Text.Json;
using Amalgam.Models;
using Amalgam.Tokenizers;

namespace Amalgam.Cli;

/// <summary><c>amalgam generate</c>: greedy continuation of a prompt, with the model folder's tokenizer.</summary>
public static class GenerateCommand
{
    public static Command Create()
    {
        var models = new ModelOptions();
        var prompt = new Option<string>("--prompt") { Description = "Text to continue.", Required = true };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Most tokens to generate (stops earlier at end of sequence).", DefaultValueFactory = _ => 32 };
        var json = new Option<bool>("--json") { Description = "Print {\"prompt_ids\", \"ids\", \"text\"} instead of the text." };
        var command = new Command("generate", "Greedy decoding from a prompt (KV cache; stops at the end-of-sequence token).");
        models.AddTo(command);
        command.Options.Add(prompt);
        command.Options.Add(maxNew);
        command.Options.Add(json);
        command.SetAction(CliErrors.Guard(parse =>
        {
            int max = parse.GetValue(maxNew);
            if (max < 0) throw new ArgumentException($"--max-new-tokens: must be 0 or more, got {max}");
            var tokenizer = TokenizerLoader.Load(parse.GetValue(models.Model)!);
            var (model, adapters) = models.Load(parse);
            using var _ = model;
            try
            {
                var promptIds = tokenizer.Encode(parse.GetValue(prompt)!, addBos: true).Select(i => (long)i).ToList();
                if (promptIds.Count == 0) throw new ArgumentException("--prompt: encodes to no tokens");
                var ids = GreedyDecoder.Generate(model, [promptIds], max, GenerationDefaults.StopTokens(tokenizer, model.Config),
                    GenerationDefaults.PadId(tokenizer, model.Config))[0];
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
