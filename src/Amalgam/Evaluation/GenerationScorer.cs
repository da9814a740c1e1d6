using Amalgam.Models;
using Amalgam.Tokenizers;
using Amalgam.Predictors;

namespace Amalgam.Evaluation;

/// <summary>
/// Greedy answers for many prompts, batched with the KV cache: each prompt is bos + its tokens, decoding stops at
/// end of sequence or at a newline (answers are one line).
/// </summary>
public static class GenerationScorer
{
    public static IReadOnlyList<string> Answers(CausalLM model, ITextTokenizer tokenizer, IReadOnlyList<string> prompts,
        int maxNewTokens, int batchSize = 64) =>
        Answers(new ModelPredictor(model, batchSize), tokenizer, prompts, maxNewTokens);

    /// <summary>
    /// Prompts that do not fit the model's context with <paramref name="maxNewTokens"/> are refused naming
    /// <paramref name="where"/>[i] (default "prompt i"), or cut as <paramref name="truncation"/> says.
    /// </summary>
    public static IReadOnlyList<string> Answers(IPredictor predictor, ITextTokenizer tokenizer, IReadOnlyList<string> prompts, int maxNewTokens,
        Truncation truncation = Truncation.None, IReadOnlyList<string?>? where = null)
    {
        var model = predictor.Model;
        var stops = GenerationDefaults.StopTokens(tokenizer, model.Config);
        // Suite answers are one line.
        foreach (var id in tokenizer.Encode("\n", addBos: false)) stops.Add(id);
        long pad = GenerationDefaults.PadId(tokenizer, model.Config);
        var encoded = prompts.Select((p, i) => ContextFit.Fit(model.Config, tokenizer.Encode(p, addBos: true).Select(t => (long)t).ToArray(),
            maxNewTokens, truncation, where?[i] ?? $"prompt {i}", $"{maxNewTokens} tokens to generate")).ToList();
        return predictor.Generate(encoded, maxNewTokens, stops, pad).Select(ids => tokenizer.Decode(ids.Select(i => (int)i))).ToList();
    }
}
