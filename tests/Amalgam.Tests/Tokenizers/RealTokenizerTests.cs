using Amalgam.Tokenizers;

namespace Amalgam.Tests.Tokenizers;

/// <summary>
/// Ids, pieces and decoded text identical to Hugging Face's tokenizers (and, for tokenizer.model, to sentencepiece)
/// on the real tokenizer files of Llama 2, Llama 3, Qwen3 and Gemma 3, for the 35 strings of
/// tests/Golden/tokenizers/texts.json. Every mismatch of a model is listed in one failure.
/// </summary>
public class RealTokenizerTests
{
    [Theory]
    [InlineData("llama2")]
    [InlineData("llama3")]
    [InlineData("qwen3")]
    [InlineData("gemma3")]
    [InlineData("llama2-metaspace-first")]
    [InlineData("llama2-metaspace-always-split")]
    [InlineData("sentencepiece-bpe")]
    public void MatchesReference(string name)
    {
        var tokenizer = TokenizerGoldens.Load(name);
        var goldens = TokenizerGoldens.Read(name);
        Assert.Equal(35, goldens.Count);
        var failures = new List<string>();
        foreach (var g in goldens)
        {
            var ids = tokenizer.Encode(g.Text, addBos: false);
            Check("ids", g.Ids, ids);
            Check("pieces", g.Pieces, ids.Select(id => tokenizer.IdToToken(id)!).ToArray());
            Check("decoded", [g.Decoded], [tokenizer.Decode(g.Ids)]);
            if (g.IdsWithSpecial is { } withSpecial)
            {
                Check("ids with special tokens", withSpecial, tokenizer.EncodeWithSpecialTokens(g.Text));
                Check("decoded with special tokens", [g.DecodedWithSpecial!], [tokenizer.Decode(withSpecial, skipSpecialTokens: false)]);
            }

            void Check<T>(string what, IReadOnlyList<T> expected, IReadOnlyList<T> actual)
            {
                if (!expected.SequenceEqual(actual))
                    failures.Add($"{what} of \"{g.Text}\": expected [{string.Join(", ", expected)}], got [{string.Join(", ", actual)}]");
            }
        }
        Assert.True(failures.Count == 0, $"{failures.Count} mismatches:\n" + string.Join("\n", failures));
    }

    [Theory]
    [InlineData("llama2", 1, 2, null)]
    [InlineData("gemma3", 2, 106, 0)] // eos_token is <end_of_turn> in Gemma 3's tokenizer_config.json
    [InlineData("qwen3", null, 151645, 151643)]
    [InlineData("llama3", 128000, 128001, null)]
    public void SpecialIds(string name, int? bos, int? eos, int? pad)
    {
        var t = TokenizerGoldens.Load(name);
        Assert.Equal((bos, eos, pad), (t.BosId, t.EosId, t.PadId));
    }

    [Theory]
    [InlineData("llama2", "Hello world  with   spaces\nand lines")]
    [InlineData("gemma3", " leading, trailing and 🦙 emoji ")]
    [InlineData("llama2-metaspace-first", "日本語 and ä")]
    [InlineData("sentencepiece-bpe", "bytes fall back: ✓ 🦙")]
    public void DecodeOfEncodeGivesTheText(string name, string text)
    {
        var t = TokenizerGoldens.Load(name);
        Assert.Equal(text, t.Decode(t.EncodeWithSpecialTokens(text)));
    }

    /// <summary>Rendered chat templates of the model's family (chat/goldens.json) encoded as apply_chat_template(tokenize=True) does.</summary>
    [Theory]
    [InlineData("llama3", 13)]
    [InlineData("qwen3", 24)]
    [InlineData("gemma3", 22)]
    public void ChatTexts_MatchReference(string name, int count)
    {
        var tokenizer = TokenizerGoldens.Load(name);
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(TestData.RepoRoot, "tests", "Golden", "tokenizers", name, "chat_ids.json")));
        var cases = doc.RootElement.EnumerateArray().ToList();
        Assert.Equal(count, cases.Count);
        foreach (var c in cases)
            Assert.Equal(c.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()), tokenizer.Encode(c.GetProperty("text").GetString()!, addBos: false));
    }
}
