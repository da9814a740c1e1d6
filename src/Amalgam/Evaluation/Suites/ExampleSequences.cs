using Amalgam.Models;
using Amalgam.Tokenizers;

namespace Amalgam.Evaluation.Suites;

/// <summary>Suite examples as token sequences, the way experts are trained and scored.</summary>
public static class ExampleSequences
{
    static long[] Tokens(ITextTokenizer tokenizer, string text, bool eos)
    {
        var ids = tokenizer.Encode(text, addBos: true).Select(i => (long)i);
        return eos ? [.. ids, tokenizer.EosId!.Value] : ids.ToArray();
    }

    /// <summary>
    /// bos + prompt + target + eos of a suite example, with the loss on the target and eos only; with
    /// <paramref name="config"/>, an example longer than the model's context is refused naming its file:line.
    /// </summary>
    public static TokenSequence Of(ITextTokenizer tokenizer, SuiteDefinition suite, Example e, DecoderConfig? config = null)
    {
        var sequence = Question(tokenizer, suite.Prompt(e), e.Target);
        if (config is not null) ContextFit.Check(config, sequence.Ids.Length, e.Where ?? "example", "the example (bos, prompt, target, eos)");
        return sequence;
    }

    /// <summary>bos + prompt + answer + eos, with the loss on the answer and eos only.</summary>
    public static TokenSequence Question(ITextTokenizer tokenizer, string prompt, string answer)
    {
        var p = Tokens(tokenizer, prompt, eos: false);
        var a = tokenizer.Encode(answer, addBos: false).Select(i => (long)i);
        return new TokenSequence([.. p, .. a, tokenizer.EosId!.Value], p.Length);
    }
}
