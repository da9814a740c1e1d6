using System.Text.Json;
using Amalgam.Merging.Execution;
using Amalgam.Merging.Recipes;
using Amalgam.Models;
using Amalgam.Tensors;
using Amalgam.Tokenizers;
using static TorchSharp.torch;

namespace Amalgam.Tests.Merging;

/// <summary>
/// mergekit's tokenizer merge (tokenizer_source base | union | model:NAME, the tokenizer: block) against the
/// independent numpy reference tests/Golden/tokenizer_merge/generate.py: the output vocabulary, every input's
/// embedding rows permuted into it with mergekit's defaults for missing tokens, the merged embed_tokens and lm_head,
/// and the merged tokenizer's ids.
/// </summary>
public class TokenizerMergeTests
{
    static string Folder(string name) => Path.Combine(TestData.RepoRoot, "tests", "Golden", "tokenizer_merge", name);

    public static IEnumerable<object[]> Cases() =>
        JsonDocument.Parse(File.ReadAllText(Folder("cases.json"))).RootElement.EnumerateArray().Select(c => new object[] { c.GetProperty("name").GetString()! });

    static JsonElement Case(string name) =>
        JsonDocument.Parse(File.ReadAllText(Folder("cases.json"))).RootElement.EnumerateArray().Single(c => c.GetProperty("name").GetString() == name);

    static string Recipe(JsonElement c) => c.GetProperty("yaml").GetString()!
        .Replace("{base}", Folder("base")).Replace("{a}", Folder("a")).Replace("{b}", Folder("b"));

    [Theory]
    [MemberData(nameof(Cases))]
    public void Embeddings_vocabulary_and_ids_match_the_reference(string name)
    {
        var c = Case(name);
        using var dir = new TestData.TempDir();
        var summary = MergeRunner.Run(MergeRecipe.Parse(Recipe(c), name + ".yml"), dir["out"]);
        int rows = c.GetProperty("rows").GetInt32();
        using (var store = TensorStore.Open(dir["out"]))
        using (var scope = NewDisposeScope())
        {
            foreach (var (key, field) in new[] { ("model.embed_tokens.weight", "embed_tokens"), ("lm_head.weight", "lm_head") })
            {
                var expected = c.GetProperty(field).Deserialize<double[][]>()!;
                var got = store.Load(key).to(ScalarType.Float64);
                Assert.Equal([rows, 8L], got.shape);
                var want = tensor(expected.SelectMany(r => r).ToArray(), [expected.Length, expected[0].Length]);
                double diff = (got - want).abs().max().item<double>();
                Assert.True(diff < 1e-6, $"{key}: max |Δ| = {diff:G3}");
            }
        }
        var config = DecoderConfig.Load(dir["out"]);
        Assert.Equal(rows, config.VocabSize);

        // The merged tokenizer has the output vocabulary, and gives the ids the embeddings were permuted to.
        var tokens = c.GetProperty("tokens").Deserialize<string[]>()!;
        var tokenizer = TokenizerLoader.Load(dir["out"]);
        Assert.Equal(tokens.Length, tokenizer.VocabSize);
        for (int i = 0; i < tokens.Length; i++) Assert.Equal(tokens[i], tokenizer.IdToToken(i));
        foreach (var e in c.GetProperty("encodings").EnumerateArray())
            Assert.Equal(e.GetProperty("ids").Deserialize<int[]>()!, tokenizer.Encode(e.GetProperty("text").GetString()!, addBos: false));

        // It loads and runs in the decoder.
        using var model = CheckpointLoader.Load(dir["out"]);
        using var run = NewDisposeScope();
        var ids = tokenizer.Encode(c.GetProperty("encodings")[0].GetProperty("text").GetString()!, addBos: true).Select(i => (long)i).ToList();
        var logits = model.Logits(ids);
        Assert.Equal(rows, logits.shape[^1]);
        Assert.True(isfinite(logits).all().item<bool>());
        Assert.Contains(summary.Notes, n => n.Contains("permuted into it before merging", StringComparison.Ordinal));
    }

    [Fact]
    public void The_union_tokenizer_files_carry_the_new_tokens_and_the_recipe_round_trips()
    {
        var c = Case("block_union_linear");
        using var dir = new TestData.TempDir();
        var recipe = MergeRecipe.Parse(Recipe(c));
        Assert.Equal(recipe.ToYaml(), MergeRecipe.Parse(recipe.ToYaml()).ToYaml());
        MergeRunner.Run(recipe, dir["out"]);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir["out"], "tokenizer.json")));
        var added = json.RootElement.GetProperty("added_tokens").EnumerateArray().ToDictionary(a => a.GetProperty("content").GetString()!, a => a);
        Assert.Equal(8, added.Count); // <|endoftext|>; st, n, i, ne (other models' ordinary tokens); <|im_start|>, <|pad|>; <|tool|>
        Assert.True(added["<|im_start|>"].GetProperty("special").GetBoolean()); // a's own settings
        Assert.False(added["st"].GetProperty("special").GetBoolean());
        Assert.True(added["st"].GetProperty("normalized").GetBoolean());      // transformers' add_tokens(str)
        Assert.Equal(20, added["<|tool|>"].GetProperty("id").GetInt32());
        using var cfg = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir["out"], "tokenizer_config.json")));
        Assert.Equal("<|tool|>", cfg.RootElement.GetProperty("added_tokens_decoder").GetProperty("20").GetProperty("content").GetString());
    }

    [Theory]
    [InlineData("tokenizer_source: union\ntokenizer:\n  source: base\n", "cannot be given together with tokenizer_source")]
    [InlineData("tokenizer:\n  sourc: union\n", "tokenizer.sourc: unknown field")]
    [InlineData("tokenizer:\n  pad_to_multiple_of: 0\n", "tokenizer.pad_to_multiple_of: expected a positive integer")]
    [InlineData("tokenizer:\n  tokens:\n    x: {force: true}\n", "tokenizer.tokens[x].source: missing")]
    [InlineData("tokenizer:\n  tokens:\n    x:\n      source: {kind: model_token, model: a}\n", "give exactly one of token and token_id")]
    [InlineData("tokenizer:\n  tokens:\n    x:\n      source: {kind: mean}\n", "kind: expected model_token or zero, got 'mean'")]
    [InlineData("tokenizer_source: everything\n", "tokenizer_source: expected base, union or model:NAME, got 'everything'")]
    [InlineData("output: adapter\ntokenizer_source: union\n", "tokenizer_source: only for output: model")]
    public void Bad_tokenizer_settings_are_refused_in_one_line(string extra, string expected)
    {
        var e = Assert.Throws<InvalidDataException>(() => MergeRecipe.Parse($"merge_method: linear\nmodels: [{Folder("a")}, {Folder("b")}]\n" + extra, "r.yml"));
        Assert.Contains(expected, e.Message);
        Assert.StartsWith("r.yml: ", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void A_token_source_the_merge_does_not_have_is_refused_and_nothing_is_written()
    {
        using var dir = new TestData.TempDir();
        string yaml = $"merge_method: linear\nmodels: [{Folder("a")}, {Folder("b")}]\ntokenizer:\n  source: union\n  tokens:\n    lower:\n      source: {Folder("a")}\n";
        var e = Assert.Throws<InvalidDataException>(() => MergeRunner.Run(MergeRecipe.Parse(yaml, "r.yml"), dir["out"]));
        Assert.Contains("tokenizer.tokens[lower].source", e.Message);
        Assert.Contains("has no token lower", e.Message);
        Assert.False(Directory.Exists(dir["out"]));
    }
}

/// <summary>The permuted-embeddings path frees every tensor it makes (one dispose scope per merged tensor).</summary>
[Collection(nameof(Amalgam.Tests.Tensors.TensorCountCollection))]
public class TokenizerMergeLeakTests
{
    static long Live()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        return TorchSharp.torch.Tensor.TotalCount;
    }

    [Fact]
    public void A_union_merge_leaves_no_live_tensors()
    {
        string G(string n) => Path.Combine(TestData.RepoRoot, "tests", "Golden", "tokenizer_merge", n);
        var c = JsonDocument.Parse(File.ReadAllText(G("cases.json"))).RootElement[0];
        var recipe = MergeRecipe.Parse(c.GetProperty("yaml").GetString()!.Replace("{base}", G("base")).Replace("{a}", G("a")).Replace("{b}", G("b")));
        using var dir = new TestData.TempDir();
        MergeRunner.Run(recipe, dir["warm"]);
        long before = Live();
        MergeRunner.Run(recipe, dir["out"]);
        Assert.Equal(before, Live());
    }
}
