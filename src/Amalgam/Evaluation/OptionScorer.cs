using Amalgam.Models;
using Amalgam.Models.Tokenizers;
using static TorchSharp.torch;

namespace Amalgam.Evaluation;

/// <summary>
/// Summed log-likelihood of each option's tokens after its prompt (bos + prompt + option), batched; the chosen
/// option is the one with the highest sum.
/// </summary>
public static class OptionScorer
{
    public static IReadOnlyList<double> LogLikelihoods(CausalLM model, ITextTokenizer tokenizer,
        IReadOnlyList<(string Prompt, string Option)> pairs, int batchSize = 64)
    {
        long pad = tokenizer.PadId ?? model.Config.PadId ?? 0;
        var result = new List<double>(pairs.Count);
        using var _ = inference_mode();
        for (int start = 0; start < pairs.Count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            var batch = pairs.Skip(start).Take(batchSize).Select(p =>
            {
                var prompt = tokenizer.Encode(p.Prompt, addBos: true);
                var option = tokenizer.Encode(p.Option, addBos: false);
                if (option.Count == 0) throw new ArgumentException($"option '{p.Option}' encodes to no tokens");
                return new Training.TokenSequence([.. prompt.Select(i => (long)i), .. option.Select(i => (long)i)], prompt.Count);
            }).ToList();
            var (ids, mask, labels) = Training.SequenceBatch.Build(batch, pad);
            var logProbs = nn.functional.log_softmax(model.forward(new DecoderInput(ids, mask)).Logits, -1);
            var scored = labels.ne(Training.SequenceBatch.Ignore);
            var picked = logProbs.gather(-1, labels.clamp_min(0).unsqueeze(-1)).squeeze(-1) * scored.to(ScalarType.Float32);
            result.AddRange(picked.sum(1).to(ScalarType.Float64).data<double>().ToArray());
        }
        return result;
    }
}
