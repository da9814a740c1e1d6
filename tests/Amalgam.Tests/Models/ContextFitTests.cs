using System.Text.Json;
using Amalgam.Evaluation.Suites;
using Amalgam.Models;
using Amalgam.Tests.Cli;
using Amalgam.Tests.Tensors;

namespace Amalgam.Tests.Models;

/// <summary>Prompts longer than the model's context: refused naming the prompt (file:line in suites), cut only with --truncate.</summary>
public class ContextFitTests
{
    static readonly DecoderConfig Config = DecoderConfig.Load(TestData.Golden("llama_gqa")); // 128 positions, bos 1

    [Fact]
    public void A_prompt_that_fits_is_returned_as_it_is_and_one_that_does_not_is_refused_by_default()
    {
        long[] fits = [1, .. Enumerable.Range(10, 119).Select(i => (long)(i % 60))]; // 120 tokens
        Assert.Same(fits, ContextFit.Fit(Config, fits, 8, Truncation.None, "--prompt", "8 tokens to generate"));
        var e = Assert.Throws<ArgumentException>(() => ContextFit.Fit(Config, fits, 9, Truncation.None, "data/t/test.jsonl:3", "9 tokens to generate"));
        Assert.Equal("data/t/test.jsonl:3: the prompt's 120 tokens and 9 tokens to generate need 129 positions, more than the model's context of 128 (max_position_embeddings); shorten it or pass --truncate left|right", e.Message);
    }

    [Fact]
    public void Left_truncation_keeps_the_bos_and_the_newest_tokens_right_truncation_the_oldest()
    {
        long[] prompt = [1, .. Enumerable.Range(0, 199).Select(i => (long)(3 + i % 50))]; // 200 tokens, bos first
        var left = ContextFit.Fit(Config, prompt, 28, Truncation.Left, "p", "28 tokens");
        Assert.Equal(100, left.Count);
        Assert.Equal([1L, .. prompt[^99..]], left);
        var right = ContextFit.Fit(Config, prompt, 28, Truncation.Right, "p", "28 tokens");
        Assert.Equal(prompt[..100], right);
        long[] noBos = [.. prompt[1..]];
        Assert.Equal(noBos[^100..], ContextFit.Fit(Config, noBos, 28, Truncation.Left, "p", "28 tokens"));
        var none = Assert.Throws<ArgumentException>(() => ContextFit.Fit(Config, prompt, 127, Truncation.Left, "--prompt", "127 tokens to generate"));
        Assert.EndsWith("(max_position_embeddings), and 127 tokens to generate leave no room for any of the prompt", none.Message);
        Assert.Equal(Truncation.Right, ContextFit.Parse("right"));
        Assert.Equal("--truncate: 'middle' is not one of none, left, right", Assert.Throws<ArgumentException>(() => ContextFit.Parse("middle")).Message);
    }

    [Fact]
    public void A_training_example_longer_than_the_context_is_refused_by_file_and_line()
    {
        using var t = new TempFolder();
        File.WriteAllText(t.File("train.jsonl"), "{\"input\": \"a\", \"target\": \"b\"}\n\n{\"input\": \"" + string.Concat(Enumerable.Repeat("ab ", 100)) + "\", \"target\": \"b\"}\n");
        var examples = Suite.ReadJsonl(t.File("train.jsonl"), "data/t/train.jsonl");
        Assert.Equal(["data/t/train.jsonl:1", "data/t/train.jsonl:3"], examples.Select(e => e.Where));
        var tokenizer = Amalgam.Tokenizers.TokenizerLoader.Load(TestData.Golden("llama_gqa"));
        var suite = new SuiteDefinition(t.Path, "s", TestData.Golden("llama_gqa"), "{input}", [], new SuiteSpec("s", "b", [], "{input}"));
        ExampleSequences.Of(tokenizer, suite, examples[0], Config);
        var e = Assert.Throws<ArgumentException>(() => ExampleSequences.Of(tokenizer, suite, examples[1], Config));
        Assert.Matches(@"^data/t/train\.jsonl:3: the example \(bos, prompt, target, eos\) of \d{3} tokens is longer than the model's context of 128 positions \(max_position_embeddings\); shorten it$", e.Message);
    }

    static float[] Logits(CliRunner.Result r)
    {
        Assert.True(r.ExitCode == 0, r.Stderr);
        return JsonDocument.Parse(r.Stdout).RootElement.GetProperty("logits").EnumerateArray().Select(v => v.GetSingle()).ToArray();
    }

    [Fact]
    public void Logits_refuses_too_many_ids_and_truncated_ids_give_the_logits_of_the_kept_ones()
    {
        string model = TestData.Golden("llama_gqa");
        var ids = Enumerable.Range(0, 150).Select(i => i == 0 ? 1 : 3 + i % 50).ToArray();
        string Ids(IEnumerable<int> s) => string.Join(',', s);
        var refused = CliRunner.Run("logits", "--model", model, "--ids", Ids(ids));
        Assert.Equal(1, refused.ExitCode);
        Assert.Equal("amalgam: error: --ids: the prompt's 150 tokens need 150 positions, more than the model's context of 128 (max_position_embeddings); shorten it or pass --truncate left|right", refused.Stderr.Trim());
        Assert.Equal(Logits(CliRunner.Run("logits", "--model", model, "--ids", Ids(ids[..128]))),
            Logits(CliRunner.Run("logits", "--model", model, "--ids", Ids(ids), "--truncate", "right")));
        Assert.Equal(Logits(CliRunner.Run("logits", "--model", model, "--ids", Ids([1, .. ids[^127..]]))),
            Logits(CliRunner.Run("logits", "--model", model, "--ids", Ids(ids), "--truncate", "left")));
        var bad = CliRunner.Run("logits", "--model", model, "--ids", "1", "--truncate", "middle");
        Assert.Equal("amalgam: error: --truncate: 'middle' is not one of none, left, right", bad.Stderr.Trim());
    }

    [Fact]
    public void Eval_names_the_jsonl_line_of_a_prompt_too_long_and_scores_it_when_asked_to_truncate()
    {
        using var t = new TempFolder();
        File.WriteAllText(t.File("suite.yaml"), $"name: s\nbase: {JsonSerializer.Serialize(Path.Combine(TestData.RepoRoot, "suite", "base"))}\ntasks:\n- {{name: t, family: f, metric: exact_match, held_out: true}}\n");
        Directory.CreateDirectory(t.File("data/t"));
        File.WriteAllText(t.File("data/t/test.jsonl"), "{\"input\": \"a\", \"target\": \"a\"}\n{\"input\": \"" + string.Concat(Enumerable.Repeat("abc ", 300)) + "\", \"target\": \"a\"}\n");
        var refused = CliRunner.Run("eval", "--suite", t.Path);
        Assert.Equal(1, refused.ExitCode);
        Assert.Matches(@"^amalgam: error: data/t/test\.jsonl:2: the prompt's 1,2\d\d tokens and \d+ tokens to generate need 1,2\d\d positions, more than the model's context of 256 \(max_position_embeddings\); shorten it or pass --truncate left\|right$", refused.Stderr.Trim());
        var truncated = CliRunner.Run("eval", "--suite", t.Path, "--truncate", "left", "--out", t.File("scores.json"));
        Assert.True(truncated.ExitCode == 0, truncated.Stderr);
        Assert.Equal(2, JsonDocument.Parse(File.ReadAllText(t.File("scores.json"))).RootElement.GetProperty("counts").GetProperty("t").GetInt32());
    }
}
