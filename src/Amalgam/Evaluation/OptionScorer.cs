using Amalgam.Models;
using Amalgam.Tokenizers;
using Amalgam.Predictors;

namespace Amalgam.Evaluation;

/// <summary>
/// Summed log-likelihood of each option's tokens after its prompt (bos + prompt + option), batched; the chosen
/// option is the one with the highest sum. With an ensemble predictor the sum is taken on the combined distribution.
/// </summary>
public static class OptionScorer
{
    public static IReadOnlyList<double> LogLikelihoods(CausalLM model, ITextTokenizer tokenizer,
        IReadOnlyList<(string Prompt, string Option)> pairs, int batchSize = 64) =>
        LogLikelihoods(new ModelPredictor(model, batchSize), tokenizer, pairs);

    /// <summary>
    /// A prompt that does not fit the model's context with its option is refused naming <paramref name="where"/>[i]
    /// (default "prompt i"), or cut as <paramref name="truncation"/> says; the option is never cut.
    /// </summary>
    public static IReadOnlyList<double> LogLikelihoods(IPredictor predictor, ITextTokenizer tokenizer, IReadOnlyList<(string Prompt, string Option)> pairs,
        Truncation truncation = Truncation.None, IReadOnlyList<string?>? where = null)
    {
        var config = predictor.Model.Config;
        long pad = GenerationDefaults.PadId(tokenizer, config);
        var sequences = pairs.Select((p, i) =>
        {
            var option = tokenizer.Encode(p.Option, addBos: false);
            if (option.Count == 0) throw new ArgumentException($"option '{p.Option}' encodes to no tokens");
            var prompt = ContextFit.Fit(config, tokenizer.Encode(p.Prompt, addBos: true).Select(t => (long)t).ToArray(), option.Count, truncation,
                where?[i] ?? $"prompt {i}", $"the option '{p.Option}' of {option.Count} tokens");
            return new TokenSequence([.. prompt, .. option.Select(t => (long)t)], prompt.Count);
        }).ToList();
        return predictor.LogLikelihoods(sequences, pad);
    }
}
