using System.CommandLine;
using System.Text.Json;
using Amalgam.Models;
using Amalgam.Strategies.Saved;
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
        var strategy = new Option<string?>("--strategy") { Description = "Answer with a saved strategy folder (amalgam study --export) instead of --model/--adapter." };
        var truncate = TruncateOption.Create();
        var json = new Option<bool>("--json") { Description = "Print {\"prompt_ids\", \"ids\", \"text\"} instead of the text." };
        var command = new Command("generate", "Greedy decoding from a prompt (KV cache; stops at the end-of-sequence token).");
        models.AddTo(command);
        command.Options.Add(prompt);
        command.Options.Add(chat);
        command.Options.Add(maxNew);
        command.Options.Add(strategy);
        command.Options.Add(truncate);
        command.Options.Add(json);
        command.SetAction(CliErrors.Guard(parse =>
        {
            int max = parse.GetValue(maxNew);
            if (max < 0) throw new ArgumentException($"--max-new-tokens: must be 0 or more, got {max}");
            if ((parse.GetValue(prompt) is null) == (parse.GetValue(chat) is null)) throw new ArgumentException("give exactly one of --prompt and --chat");
            if (parse.GetValue(strategy) is { } strategyDir)
            {
                if (parse.GetValue(models.Model) is not null || (parse.GetValue(models.Adapter) ?? []).Length > 0)
                    throw new ArgumentException("--strategy: give either a strategy or --model/--adapter, not both");
                using var loaded = StrategyFolder.Load(strategyDir);
                var pool = loaded.Pool;
                var ids = Fit(pool.Model.Config, Encode(pool.Tokenizer, parse.GetValue(prompt), parse.GetValue(chat), pool.BasePath), max, parse, truncate, chat);
                var answer = loaded.Predictor.Generate([ids], max, GenerationDefaults.StopTokens(pool.Tokenizer, pool.Model.Config), pool.PadId)[0];
                Print(parse.GetValue(json), ids, answer, pool.Tokenizer);
                return 0;
            }
            var tokenizer = TokenizerLoader.Load(models.ModelDir(parse));
            var promptIds = Encode(tokenizer, parse.GetValue(prompt), parse.GetValue(chat), models.ModelDir(parse));
            var (model, adapters) = models.Load(parse);
            using var _ = model;
            try
            {
                promptIds = Fit(model.Config, promptIds, max, parse, truncate, chat);
                var ids = GreedyDecoder.Generate(model, [promptIds], max, GenerationDefaults.StopTokens(tokenizer, model.Config),
                    GenerationDefaults.PadId(tokenizer, model.Config))[0];
                Print(parse.GetValue(json), promptIds, ids, tokenizer);
            }
            finally
            {
                foreach (var a in adapters) a.Dispose();
            }
            return 0;
        }));
        return command;
    }

    /// <summary>The prompt's ids with BOS, or the chat rendered with the model's template (which writes BOS itself).</summary>
    static List<long> Encode(ITextTokenizer tokenizer, string? prompt, string? chatFile, string modelDir)
    {
        var ids = (chatFile is null
                ? tokenizer.Encode(prompt!, addBos: true)
                : tokenizer.Encode(ChatTemplate.Load(modelDir).Render(ChatMessages.Read(chatFile), addGenerationPrompt: true), addBos: false))
            .Select(i => (long)i).ToList();
        return ids.Count > 0 ? ids : throw new ArgumentException(chatFile is null ? "--prompt: encodes to no tokens" : "--chat: renders to no tokens");
    }

    /// <summary>The prompt if it fits the context with the tokens to generate, else refused or cut as --truncate says.</summary>
    static List<long> Fit(DecoderConfig config, List<long> ids, int maxNew, ParseResult parse, Option<string> truncate, Option<string> chat) =>
        [.. ContextFit.Fit(config, ids, maxNew, TruncateOption.Get(parse, truncate), parse.GetValue(chat) is null ? "--prompt" : "--chat",
            $"{maxNew:N0} tokens to generate (--max-new-tokens)")];

    static void Print(bool json, IReadOnlyList<long> promptIds, IReadOnlyList<long> ids, ITextTokenizer tokenizer)
    {
        string text = tokenizer.Decode(ids.Select(i => (int)i));
        Console.WriteLine(json ? JsonSerializer.Serialize(new { prompt_ids = promptIds, ids, text }) : text);
    }
}
