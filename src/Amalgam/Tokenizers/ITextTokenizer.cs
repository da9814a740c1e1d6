namespace Amalgam.Tokenizers;

/// <summary>Text to token ids and back, whatever file format the tokenizer came from.</summary>
public interface ITextTokenizer
{
    /// <summary>Token ids for <paramref name="text"/>; with <paramref name="addBos"/> the BOS id is prepended when the tokenizer has one.</summary>
    IReadOnlyList<int> Encode(string text, bool addBos);

    /// <summary>Text for <paramref name="ids"/>, skipping special tokens (BOS, EOS, PAD and the like).</summary>
    string Decode(IEnumerable<int> ids);

    /// <summary>Text for <paramref name="ids"/>; special tokens are written out unless <paramref name="skipSpecialTokens"/>.</summary>
    string Decode(IEnumerable<int> ids, bool skipSpecialTokens);

    /// <summary>
    /// Token ids with the special tokens the tokenizer files put around a text (tokenizer.json's post-processor,
    /// tokenizer_config.json's add_bos_token/add_eos_token), as Hugging Face's <c>add_special_tokens=True</c> does.
    /// </summary>
    IReadOnlyList<int> EncodeWithSpecialTokens(string text);

    /// <summary>The vocabulary string of <paramref name="id"/> (the piece), or null when no token has that id.</summary>
    string? IdToToken(int id);

    int? BosId { get; }
    int? EosId { get; }
    int? PadId { get; }

    /// <summary>One more than the largest id the tokenizer can produce.</summary>
    int VocabSize { get; }

    /// <summary>Path of the file the tokenizer was loaded from ("(in memory)" when built in code).</summary>
    string Source { get; }
}
