using Amalgam.Tokenizers;

namespace Amalgam.Models;

/// <summary>
/// Padding and stop tokens of a model with its tokenizer, computed in one place for every caller (generation,
/// scoring, fitting, router features, training). The tokenizer's pad token wins over the config's: it is what the
/// data was encoded with. Stop tokens: the config's eos ids and the tokenizer's eos.
/// </summary>
public static class GenerationDefaults
{
    public static long PadId(ITextTokenizer tokenizer, DecoderConfig config) => tokenizer.PadId ?? config.PadId ?? 0;

    public static HashSet<long> StopTokens(ITextTokenizer tokenizer, DecoderConfig config)
    {
        var stops = config.EosTokenIds.Select(i => (long)i).ToHashSet();
        if (tokenizer.EosId is int eos) stops.Add(eos);
        return stops;
    }
}
