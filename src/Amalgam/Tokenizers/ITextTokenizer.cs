namespace Amalgam.Tokenizers;

/// <summary>Text to token ids and back, whatever file format the tokenizer came from.</summary>
public interface ITextTokenizer
{
    /// <summary>Token ids for <paramref name="text"/>; with <paramref name="addBos"/> the BOS id is prepended when the tokenizer has one.</summary>
    IReadOnlyList<int> Encode(string text, bool addBos);

    /// <summary>Text for <paramref name="ids"/>, skipping special tokens (BOS, EOS, PAD and the like).</summary>
    string Decode(IEnumerable<int> ids);

    int? BosId { get; }
    int? EosId { get; }
    int? PadId { get; }

    /// <summary>One more than the largest id the tokenizer can produce.</summary>
    int VocabSize { get; }

    /// <summary>Path of the file the tokenizer was loaded from ("(in memory)" when built in code).</summary>
    string Source { get; }
}
