using System.Text.RegularExpressions;
using Amalgam.Evaluation.Suites;
using Amalgam.Models;
using Amalgam.Predictors;
using Amalgam.Routing;
using Amalgam.Strategies;
using Amalgam.Strategies.Saved;
using Amalgam.Study;
using Amalgam.Tokenizers;

namespace Amalgam.Tests.Docs;

/// <summary>
/// docs/library.md's walk-through, compiled and run: each snippet below is the text of one code block in the page
/// (checked by <see cref="The_page_shows_exactly_these_snippets"/>), so the page cannot drift from code that works.
/// </summary>
[Collection("Walkthrough")]
public class LibraryWalkthroughTests
{
    static readonly string suite = Path.Combine(TestData.RepoRoot, "suite");

    [Fact]
    public void Load_a_base_and_experts_and_answer_with_one_of_them()
    {
        // <snippet load-and-generate>
        var experts = new[] { "reverse_word", "uppercase" }.Select(n => (n, Path.Combine(suite, "experts", n))).ToList();
        using var pool = ExpertPool.Load(Path.Combine(suite, "base"), experts);
        var prompt = pool.Tokenizer.Encode("Spell the word \"garden\" backwards.\nAnswer: ", addBos: true).Select(i => (long)i).ToList();
        var onlyReverse = MixturePredictor.Fixed(pool.Model, [1.0, 0.0]);   // weight 1 on expert 0, in factored form
        var answer = onlyReverse.Generate([prompt], 16, GenerationDefaults.StopTokens(pool.Tokenizer, pool.Model.Config), pool.PadId)[0];
        Console.WriteLine(pool.Tokenizer.Decode(answer.Select(i => (int)i)));   // nedrag
        // </snippet>
        Assert.Equal("nedrag", pool.Tokenizer.Decode(answer.Select(i => (int)i)));
    }

    [Fact]
    public void Fit_a_router_save_it_load_it_and_generate()
    {
        using var dir = new TestData.TempDir();
        string saved = dir["my-router"];
        // <snippet router-save-load>
        var definition = Suite.Load(suite);
        var tasks = definition.HeldIn.Take(3).ToList();
        using (var pool = ExpertPool.Load(definition.BasePath, tasks.Select(t => (t.Name, t.ExpertPath!)).ToList()))
        {
            // Validation prompts labelled with their task's expert, mean-pooled base states as features.
            var data = tasks.SelectMany((t, k) => Suite.LoadSplit(t, Suite.Validation).Take(20).Select(e => (e, k))).ToList();
            var prompts = data.Select(d => (IReadOnlyList<long>)pool.Tokenizer.Encode(definition.Prompt(d.e), addBos: true).Select(i => (long)i).ToList()).ToList();
            using var features = PromptFeatures.MeanPooled(pool.Model, prompts, pool.PadId);
            var router = LearnedRouter.Train(features, data.Select(d => d.k).ToList(), pool.Names, seed: 0).Router;
            using var strategy = new RouterStrategy(router, topK: 1, RouteAggregation.Parameters) { Name = "my-router", Family = StrategyFamily.Route };
            StrategyFolder.Save(strategy, pool, saved);   // strategy.json + router/, base and experts by path and hash
        }
        using var loaded = StrategyFolder.Load(saved);   // no suite needed
        var ids = loaded.Pool.Tokenizer.Encode("Spell the word \"planet\" backwards.\nAnswer: ", addBos: true).Select(i => (long)i).ToList();
        var stops = GenerationDefaults.StopTokens(loaded.Pool.Tokenizer, loaded.Pool.Model.Config);
        var reply = loaded.Predictor.Generate([ids], 16, stops, loaded.Pool.PadId)[0];
        Console.WriteLine(loaded.Pool.Tokenizer.Decode(reply.Select(i => (int)i)));
        // </snippet>
        Assert.Equal("my-router", loaded.Strategy.Name);
        Assert.Equal(StrategyKinds.Router, loaded.Strategy.Kind);
        Assert.NotEmpty(reply);
    }

    [Fact]
    public void Merge_experts_in_memory()
    {
        // <snippet merge-in-memory>
        var paths = new[] { "reverse_word", "uppercase", "first_letter" }.Select(n => Path.Combine(suite, "experts", n)).ToList();
        using var merged = ExpertMerge.ToModel(Path.Combine(suite, "base"), paths, "ties",
            new Dictionary<string, object> { ["density"] = 0.5, ["lambda"] = 1.0 });
        var tokenizer = TokenizerLoader.Load(Path.Combine(suite, "base"));
        var ids = tokenizer.Encode("Spell the word \"garden\" backwards.\nAnswer: ", addBos: true).Select(i => (long)i).ToList();
        var tokens = new ModelPredictor(merged).Generate([ids], 16, GenerationDefaults.StopTokens(tokenizer, merged.Config), 0)[0];
        Console.WriteLine(tokenizer.Decode(tokens.Select(i => (int)i)));
        // </snippet>
        Assert.InRange(tokens.Count, 1, 16);
    }

    [Fact]
    public void Run_the_study_programmatically()
    {
        using var dir = new TestData.TempDir();
        string outDir = dir["study-out"];
        // <snippet study>
        var options = StudyOptions.Quick(suite, ["base", "merge-uniform", "route-learned-top1"]) with
        {
            TestLimit = 2,                                  // test examples per task (the CLI's default is 30)
            ExportDir = Path.Combine(outDir, "strategies"), // every deployable strategy saved as a folder
        };
        var results = StudyRunner.Run(options, new Progress<string>(Console.WriteLine));
        StudyOutputs.Write(results, outDir);   // results.json, report.md, frontier.png, per_task.png
        foreach (var pick in Recommendation.Compute(results)) Console.WriteLine($"{pick.Budget.Name}: {pick.Best?.Name}");
        // </snippet>
        Assert.Equal(3, results.Strategies.Count);
        Assert.True(File.Exists(Path.Combine(outDir, "strategies", "route-learned-top1", StrategyFolder.FileName)));
    }

    static Dictionary<string, string> Snippets(string text, Regex start, string end)
    {
        var result = new Dictionary<string, string>();
        foreach (Match m in start.Matches(text))
        {
            int from = m.Index + m.Length, to = text.IndexOf(end, from, StringComparison.Ordinal);
            var lines = text[from..to].Split('\n').Select(l => l.TrimEnd('\r')).Where((l, i) => i > 0).ToList();
            if (lines.Count > 0 && string.IsNullOrWhiteSpace(lines[^1])) lines.RemoveAt(lines.Count - 1);
            int indent = lines.Where(l => l.Trim().Length > 0).Min(l => l.Length - l.TrimStart().Length);
            result[m.Groups[1].Value] = string.Join("\n", lines.Select(l => l.Length >= indent ? l[indent..] : l.Trim())).TrimEnd();
        }
        return result;
    }

    [Fact]
    public void The_page_shows_exactly_these_snippets()
    {
        var code = Snippets(File.ReadAllText(Path.Combine(TestData.RepoRoot, "tests", "Amalgam.Tests", "Docs", "LibraryWalkthroughTests.cs")),
            new Regex(@"// <snippet ([a-z-]+)>"), "// </snippet>");
        var page = Snippets(File.ReadAllText(Path.Combine(TestData.RepoRoot, "docs", "library.md")), new Regex(@"<!-- snippet: ([a-z-]+) -->\n```csharp"), "```");
        Assert.Equal(code.Keys.Order(), page.Keys.Order());
        foreach (var (name, text) in code) Assert.True(text == page[name], $"docs/library.md snippet '{name}' differs from the tested code:\n{page[name]}\n---\n{text}");
    }
}
