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

    public static IReadOnlyList<double> LogLikelihoods(IPredictor predictor, ITextTokenizer tokenizer, IReadOnlyList<(string Prompt, string Option)> pairs)
    {
        long pad = GenerationDefaults.PadId(tokenizer, predictor.Model.Config);
        var sequences = pairs.Select(p =>
        {
            var prompt = tokenizer.Encode(p.Prompt, addBos: true);
            var option = tokenizer.Encode(p.Option, addBos: false);
            if (option.Count == 0) throw new ArgumentException($"option '{p.Option}' encodes to no tokens");
            return new TokenSequence([.. prompt.Select(i => (long)i), .. option.Select(i => (long)i)], prompt.Count);
        }).ToList();
        return predictor.LogLikelihoods(sequences, pad);
    }
}
