using Amalgam.Tokenizers;

namespace Amalgam.Tests.Tokenizers;

/// <summary>
/// Hand-made tokenizer.json fixtures (Fixtures/). Both byte-level BPE fixtures share this vocabulary:
///   0 &lt;|endoftext|&gt; (added, special)   1 l  2 o  3 w  4 e  5 r  6 Ġ (the byte-level symbol for ' ')  7 s  8 t
///   9 Ã  10 © (the symbols for UTF-8 bytes C3 A9, i.e. 'é')  11 lo  12 low  13 er  14 Ġlow  15 lower  16 Ã©
/// and these merges, rank = position:  0 "l o"  1 "lo w"  2 "e r"  3 "Ġ low"  4 "low er"  5 "Ã ©".
/// BPE repeatedly merges the adjacent pair with the lowest rank until no listed pair remains.
/// </summary>
public class HuggingFaceBpeTokenizerTests
{
    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Tokenizers", "Fixtures", name);

    private static ITextTokenizer ByteLevel() => TokenizerLoader.Load(Fixture("bytelevel-bpe"));
    private static ITextTokenizer SplitIgnoreMerges() => TokenizerLoader.Load(Fixture("split-bytelevel-bpe"));

    // "lower":  l o w e r  -(rank0 l+o)->  lo w e r  -(rank1 lo+w)->  low e r  -(rank2 e+r)->  low er
    //           -(rank4 low+er)->  lower                                                         = [15]
    // " lower": the GPT-2 regex keeps the space with the word: Ġ l o w e r -> Ġ lo w e r -> Ġ low e r; now both
    //           Ġ+low (rank3) and e+r (rank2) apply, e+r wins: Ġ low er; then Ġ+low (3) beats low+er (4): Ġlow er;
    //           "Ġlow er" is no merge                                                            = [14, 13]
    // "slow":   s l o w -> s lo w -> s low; "s low" is no merge                                  = [7, 12]
    // "tést":   one piece, bytes t C3 A9 s t = t Ã © s t; only Ã+© (rank5) applies: t Ã© s t     = [8, 16, 7, 8]
    // "low<|endoftext|>low": the added token is cut out before BPE                               = [12, 0, 12]
    [Theory]
    [InlineData("lower", new[] { 15 })]
    [InlineData("lower lower", new[] { 15, 14, 13 })]
    [InlineData("slow", new[] { 7, 12 })]
    [InlineData("tést", new[] { 8, 16, 7, 8 })]
    [InlineData("low<|endoftext|>low", new[] { 12, 0, 12 })]
    [InlineData("", new int[0])]
    public void ByteLevel_PinnedIds(string text, int[] expected) =>
        Assert.Equal(expected, ByteLevel().Encode(text, addBos: false));

    [Theory]
    [InlineData("lower lower")]
    [InlineData("slow tést")]
    [InlineData("   lowest  ")]
    public void ByteLevel_DecodeGivesTextBack(string text)
    {
        var t = ByteLevel();
        Assert.Equal(text, t.Decode(t.Encode(text, addBos: true)));
    }

    [Fact]
    public void ByteLevel_DecodeSkipsSpecialTokens() => Assert.Equal("lowlow", ByteLevel().Decode([0, 12, 0, 12, 0]));

    [Fact]
    public void ByteLevel_SpecialIdsFromTokenizerConfig()
    {
        var t = ByteLevel();
        Assert.Equal((0, 0, (int?)null, 17), (t.BosId, t.EosId, t.PadId, t.VocabSize));
        Assert.Equal([0, 12], t.Encode("low", addBos: true));
        Assert.EndsWith(Path.Combine("bytelevel-bpe", "tokenizer.json"), t.Source);
    }

    [Fact]
    public void ByteLevel_ByteWithoutSymbolAndNoUnk_Throws()
    {
        var ex = Assert.Throws<ArgumentException>(() => ByteLevel().Encode("lowz", false));
        Assert.Contains("\"z\"", ex.Message);
    }

    // Same vocabulary plus 17 "Ġlower" (no merge produces it) and 18 "!"; Split regex " ?\p{L}+", ignore_merges.
    // "lower lower": pieces "lower", " lower". ignore_merges takes a piece whole when it is in the vocabulary:
    //   "lower" = 15 (merges agree), "Ġlower" = 17 (merges alone would give [14, 13] as above)    = [15, 17]
    // "slow!": pieces "slow" (not in vocab, merges as above: [7, 12]) and "!", which the regex does not match but
    //   Split "Isolated" keeps as its own piece                                                   = [7, 12, 18]
    [Theory]
    [InlineData("lower lower", new[] { 15, 17 })]
    [InlineData("slow!", new[] { 7, 12, 18 })]
    [InlineData("te\u0301st", new[] { 8, 16, 7, 8 })] // NFC normalizer: e + combining acute becomes é first
    public void SplitIgnoreMerges_PinnedIds(string text, int[] expected) =>
        Assert.Equal(expected, SplitIgnoreMerges().Encode(text, addBos: false));

    [Fact]
    public void SplitIgnoreMerges_BosFromTemplatePostProcessor()
    {
        var t = SplitIgnoreMerges();
        Assert.Equal(0, t.BosId);
        Assert.Null(t.EosId);
        Assert.Equal([0, 15, 17], t.Encode("lower lower", addBos: true));
        Assert.Equal("lower lower!", t.Decode(t.Encode("lower lower!", addBos: true)));
    }

    [Fact]
    public void Unigram_IsRefused()
    {
        var ex = Assert.Throws<InvalidDataException>(() => TokenizerLoader.Load(Fixture("unigram")));
        Assert.Contains(Path.Combine("unigram", "tokenizer.json") + ": model.type \"Unigram\" is not supported", ex.Message);
    }

    // The sentencepiece-bpe fixture (Llama 2's pipeline): vocab 0 <unk> 1 <s> 2 </s> 3 <0x00> 4 ▁ 5 a 6 b 7 ▁a 8 ▁ab,
    // merges 0 "▁ a" 1 "▁a b". Normalizer: prepend "▁", spaces to "▁". Byte fallback has only <0x00>.
    // "ab a": ▁ab▁a -> symbols ▁ a b ▁ a -> rank 0 twice (leftmost first): ▁a b ▁a -> rank 1: ▁ab ▁a   = [8, 7]
    // "c": ▁c; c is not in the vocabulary and its byte 0x63 has no token, so it is unk                 = [4, 0]
    // "cc": fuse_unk joins the two unks into one                                                       = [4, 0]
    // "\0" (NUL): byte fallback to <0x00>                                                                       = [4, 3]
    [Theory]
    [InlineData("ab a", new[] { 8, 7 })]
    [InlineData("c", new[] { 4, 0 })]
    [InlineData("cc", new[] { 4, 0 })]
    [InlineData("\0", new[] { 4, 3 })]
    [InlineData("a<s>a", new[] { 7, 1, 7 })] // the normalizer runs on each stretch between added tokens
    public void SentencePieceStyleBpe_PinnedIds(string text, int[] expected) =>
        Assert.Equal(expected, TokenizerLoader.Load(Fixture("sentencepiece-bpe")).Encode(text, addBos: false));

    [Fact]
    public void SentencePieceStyleBpe_DecodeStripsTheDummyPrefix()
    {
        var t = TokenizerLoader.Load(Fixture("sentencepiece-bpe"));
        // " ab" " a" " " NUL fused, then Strip removes the one leading space the normalizer's Prepend put there.
        Assert.Equal("ab a \0", t.Decode([8, 7, 4, 3]));
        Assert.Equal("<unk> a", t.Decode([0, 7], skipSpecialTokens: false));
        Assert.Equal("a", t.Decode([0, 7]));
    }

    [Fact]
    public void Loader_EmptyFolder_ThrowsFileNotFound()
    {
        using var dir = new TempDir();
        var ex = Assert.Throws<FileNotFoundException>(() => TokenizerLoader.Load(dir.Path));
        Assert.Contains(dir.Path, ex.Message);
        Assert.Contains("tokenizer.amalgam.json", ex.Message);
        Assert.Contains("tokenizer.json", ex.Message);
    }

    [Fact]
    public void Loader_MissingFolder_ThrowsFileNotFound() =>
        Assert.Throws<FileNotFoundException>(() => TokenizerLoader.Load(Path.Combine(Path.GetTempPath(), "amalgam-no-such-dir")));

    [Fact]
    public void Loader_PrefersAmalgamFormat()
    {
        using var dir = new TempDir();
        File.Copy(Path.Combine(Fixture("bytelevel-bpe"), "tokenizer.json"), Path.Combine(dir.Path, "tokenizer.json"));
        new AmalgamTokenizer(["a"]).Save(Path.Combine(dir.Path, AmalgamTokenizer.FileName));
        Assert.IsType<AmalgamTokenizer>(TokenizerLoader.Load(dir.Path));
    }

    // Unsupported stages, each edited into a copy of the byte-level fixture.
    [Theory]
    [InlineData("\"type\": \"BPE\"", "\"type\": \"WordPiece\"", "model.type \"WordPiece\" is not supported")]
    [InlineData("\"dropout\": null", "\"dropout\": 0.1", "model.dropout is set")]
    [InlineData("\"normalizer\": null", "\"normalizer\": {\"type\": \"Lowercase\"}", "normalizer.type \"Lowercase\" is not supported")]
    [InlineData("\"add_prefix_space\": false", "\"add_prefix_space\": true", "pre_tokenizer.add_prefix_space is true")]
    [InlineData("\"pre_tokenizer\": { \"type\": \"ByteLevel\"", "\"pre_tokenizer\": { \"type\": \"Whitespace\"", "pre_tokenizer.type \"Whitespace\" is not supported")]
    [InlineData("\"decoder\": { \"type\": \"ByteLevel\"", "\"decoder\": { \"type\": \"Metaspace\"", "decoder.type \"Metaspace\" is not supported")]
    [InlineData("\"lstrip\": false", "\"lstrip\": true", "added_tokens[0].lstrip is true")]
    [InlineData("\"lo w\",", "\"lo zz\",", "model.vocab/model.merges rejected by Microsoft.ML.Tokenizers")]
    [InlineData("\"lo w\",", "\"lo w x\",", "model.merges[1] \"lo w x\" is not two tokens")]
    [InlineData("\"unk_token\": null", "\"unk_token\": \"<unk>\"", "model.unk_token \"<unk>\" is not in model.vocab")]
    public void UnsupportedOrBroken_IsRefusedNamingTheField(string find, string replace, string expected)
    {
        using var dir = new TempDir();
        var json = File.ReadAllText(Path.Combine(Fixture("bytelevel-bpe"), "tokenizer.json"));
        Assert.Contains(find, json);
        var path = dir.File("tokenizer.json", json.Replace(find, replace));
        var ex = Assert.Throws<InvalidDataException>(() => TokenizerLoader.Load(dir.Path));
        Assert.StartsWith($"{path}: ", ex.Message);
        Assert.Contains(expected, ex.Message);
        Assert.DoesNotContain('\n', ex.Message);
    }

    [Fact]
    public void ConfigJson_SuppliesIdsWhenTokenizerConfigIsAbsent()
    {
        using var dir = new TempDir();
        File.Copy(Path.Combine(Fixture("bytelevel-bpe"), "tokenizer.json"), Path.Combine(dir.Path, "tokenizer.json"));
        dir.File("config.json", """{"bos_token_id": 12, "eos_token_id": [0, 15], "pad_token_id": null}""");
        var t = TokenizerLoader.Load(dir.Path);
        Assert.Equal((12, 0, (int?)null), (t.BosId, t.EosId, t.PadId));
        Assert.Equal("", t.Decode([12, 0])); // BOS/EOS are skipped on decode even when they are ordinary vocabulary
    }

    [Fact]
    public void TokenizerConfig_UnknownToken_IsRefused()
    {
        using var dir = new TempDir();
        File.Copy(Path.Combine(Fixture("bytelevel-bpe"), "tokenizer.json"), Path.Combine(dir.Path, "tokenizer.json"));
        dir.File("tokenizer_config.json", """{"bos_token": "<s>"}""");
        var ex = Assert.Throws<InvalidDataException>(() => TokenizerLoader.Load(dir.Path));
        Assert.Contains("tokenizer_config.json: bos_token \"<s>\" is not a token of tokenizer.json", ex.Message);
    }
}
