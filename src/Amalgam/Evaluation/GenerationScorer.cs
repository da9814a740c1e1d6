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

    public static IReadOnlyList<string> Answers(IPredictor predictor, ITextTokenizer tokenizer, IReadOnlyList<string> prompts, int maxNewTokens)
    {
        var model = predictor.Model;
        var stops = GenerationDefaults.StopTokens(tokenizer, model.Config);
        // Suite answers are one line.
        foreach (var id in tokenizer.Encode("\n", addBos: false)) stops.Add(id);
        long pad = GenerationDefaults.PadId(tokenizer, model.Config);
        var encoded = prompts.Select(p => (IReadOnlyList<long>)tokenizer.Encode(p, addBos: true).Select(i => (long)i).ToArray()).ToList();
        return predictor.Generate(encoded, maxNewTokens, stops, pad).Select(ids => tokenizer.Decode(ids.Select(i => (int)i))).ToList();
    }
}
