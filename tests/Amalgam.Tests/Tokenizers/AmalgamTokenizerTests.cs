using Amalgam.Tokenizers;

namespace Amalgam.Tests.Tokenizers;

public class AmalgamTokenizerTests
{
    // ids:                 0        1        2      3       4    5    6     7      8    9
    private static readonly string[] Vocab = ["<pad>", "<unk>", "<s>", "</s>", "a", "b", "ab", "abc", "c", " "];

    private static AmalgamTokenizer Make() => new(Vocab, bos: "<s>", eos: "</s>", pad: "<pad>", unk: "<unk>");

    [Theory]
    [InlineData("abc", new[] { 7 })]            // "abc" beats "ab" + "c"
    [InlineData("abab", new[] { 6, 6 })]        // "ab" beats "a" + "b"
    [InlineData("abca", new[] { 7, 4 })]
    [InlineData("abx c", new[] { 6, 1, 9, 8 })] // x has no token -> unk
    [InlineData("<s>", new[] { 1, 1, 1 })]       // specials are never matched from text; '<', 's', '>' are unknown
    [InlineData("\U0001F600", new[] { 1 })]      // a surrogate pair is one unknown character, not two
    [InlineData("", new int[0])]
    public void Encode_GreedyLongestMatch(string text, int[] expected) =>
        Assert.Equal(expected, Make().Encode(text, addBos: false));

    [Fact]
    public void Encode_AddBos_PrependsBos() => Assert.Equal([2, 6, 9, 8], Make().Encode("ab c", addBos: true));

    [Fact]
    public void Encode_AddBos_WithoutBos_AddsNothing() =>
        Assert.Equal([1], new AmalgamTokenizer(["a", "?"], unk: "?").Encode("b", addBos: true));

    [Fact]
    public void Ids_AndSize()
    {
        var t = Make();
        Assert.Equal((2, 3, 0, 1, 10), (t.BosId, t.EosId, t.PadId, t.UnkId, t.VocabSize));
        Assert.Equal(AmalgamTokenizer.InMemorySource, t.Source);
    }

    [Fact]
    public void Decode_SkipsBosEosPad_KeepsUnk() =>
        Assert.Equal("ab c<unk>", Make().Decode([2, 6, 9, 8, 1, 3, 0, 0]));

    [Fact]
    public void Decode_RejectsOutOfRangeId() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => Make().Decode([10]));

    [Theory]
    [InlineData("abc abcab")]
    [InlineData("c b a ")]
    [InlineData("aaaa")]
    public void RoundTrip(string text) => Assert.Equal(text, Make().Decode(Make().Encode(text, addBos: true)));

    [Fact]
    public void Encode_UnknownCharacterWithoutUnk_Throws()
    {
        var ex = Assert.Throws<ArgumentException>(() => new AmalgamTokenizer(["a"]).Encode("az", false));
        Assert.Contains("\"z\" at index 1", ex.Message);
    }

    [Fact]
    public void CreateCharLevel_SpecialsThenSortedDistinctChars()
    {
        var t = AmalgamTokenizer.CreateCharLevel(["hello", "world"]);
        Assert.Equal(["<pad>", "<unk>", "<s>", "</s>", "d", "e", "h", "l", "o", "r", "w"], t.Tokens);
        Assert.Equal((0, 1, 2, 3), (t.PadId, t.UnkId, t.BosId, t.EosId));
        Assert.Equal([2, 6, 8, 7, 4], t.Encode("hold", addBos: true));
        Assert.Equal("helloworld", t.Decode(t.Encode("helloworld", true)));
        Assert.Equal("hello<unk>world", t.Decode(t.Encode("hello world", true))); // no space in the training texts
        Assert.Equal([6, 1, 10], t.Encode("h!w", false));
    }

    [Fact]
    public void CreateCharLevel_KeepsSurrogatePairsWhole()
    {
        var t = AmalgamTokenizer.CreateCharLevel(["a\U0001F600"]);
        Assert.Equal(["<pad>", "<unk>", "<s>", "</s>", "a", "\U0001F600"], t.Tokens);
        Assert.Equal("\U0001F600a", t.Decode(t.Encode("\U0001F600a", true)));
    }

    [Fact]
    public void SaveThenLoad_ThroughLoader_RoundTrips()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, AmalgamTokenizer.FileName);
        Make().Save(path);
        Make().Save(path); // overwriting an existing file works too

        var loaded = Assert.IsType<AmalgamTokenizer>(TokenizerLoader.Load(dir.Path));
        Assert.Equal(Vocab, loaded.Tokens);
        Assert.Equal(("<s>", "</s>", "<pad>", "<unk>"), (loaded.Bos, loaded.Eos, loaded.Pad, loaded.Unk));
        Assert.Equal(path, loaded.Source);
        Assert.Equal([AmalgamTokenizer.FileName], Directory.GetFiles(dir.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void Save_OmitsAbsentSpecials()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, AmalgamTokenizer.FileName);
        new AmalgamTokenizer(["x", "<y>"]).Save(path);
        var text = File.ReadAllText(path);
        Assert.DoesNotContain("bos", text);
        Assert.Contains("\"<y>\"", text); // written readably, not as \u003C
        var loaded = AmalgamTokenizer.Load(path);
        Assert.Null(loaded.BosId);
        Assert.Equal(["x", "<y>"], loaded.Tokens);
    }

    [Theory]
    [InlineData("{", "not valid JSON")]
    [InlineData("[]", "the top level must be a JSON object")]
    [InlineData("""{"tokens": ["a"]}""", "format is missing or not a string")]
    [InlineData("""{"format": "amalgam-tokens-v2", "tokens": ["a"]}""", "format is \"amalgam-tokens-v2\", expected \"amalgam-tokens-v1\"")]
    [InlineData("""{"format": "amalgam-tokens-v1"}""", "tokens is missing or not an array")]
    [InlineData("""{"format": "amalgam-tokens-v1", "tokens": "abc"}""", "tokens is missing or not an array")]
    [InlineData("""{"format": "amalgam-tokens-v1", "tokens": []}""", "tokens is empty")]
    [InlineData("""{"format": "amalgam-tokens-v1", "tokens": ["a", 5]}""", "tokens[1] is Number, not a string")]
    [InlineData("""{"format": "amalgam-tokens-v1", "tokens": ["a", "b", ""]}""", "tokens[2] is empty")]
    [InlineData("""{"format": "amalgam-tokens-v1", "tokens": ["<s>", "x", "y", "a", "b", "c", "d", "a"]}""", "tokens[7] duplicates tokens[3] (\"a\")")]
    [InlineData("""{"format": "amalgam-tokens-v1", "tokens": ["a"], "bos": "<s>"}""", "bos \"<s>\" is not one of the tokens")]
    [InlineData("""{"format": "amalgam-tokens-v1", "tokens": ["a"], "eos": "</s>"}""", "eos \"</s>\" is not one of the tokens")]
    [InlineData("""{"format": "amalgam-tokens-v1", "tokens": ["a"], "pad": "<pad>"}""", "pad \"<pad>\" is not one of the tokens")]
    [InlineData("""{"format": "amalgam-tokens-v1", "tokens": ["a"], "unk": 3}""", "unk is Number, not a string")]
    [InlineData("""{"format": "amalgam-tokens-v1", "tokens": ["a"], "eso": "a"}""", "unknown field \"eso\"")]
    public void Load_InvalidFile_NamesFileAndField(string json, string expected)
    {
        using var dir = new TempDir();
        var path = dir.File(AmalgamTokenizer.FileName, json);
        var ex = Assert.Throws<InvalidDataException>(() => TokenizerLoader.Load(dir.Path));
        Assert.StartsWith($"{path}: ", ex.Message);
        Assert.Contains(expected, ex.Message);
        Assert.DoesNotContain('\n', ex.Message);
    }

    [Fact]
    public void Constructor_InvalidVocabulary_ThrowsArgumentException()
    {
        var ex = Assert.Throws<ArgumentException>(() => new AmalgamTokenizer(["a", "a"]));
        Assert.Equal("tokens[1] duplicates tokens[0] (\"a\")", ex.Message);
        Assert.Throws<ArgumentException>(() => new AmalgamTokenizer(["a"], unk: "<unk>"));
    }
}
