using Amalgam.Tokenizers;
using Amalgam.Bundled.Tasks;

namespace Amalgam.Tests.Bundled.Tasks;

using Amalgam.Evaluation.Suites;

public class SuiteDataBuilderTests
{
    private const int TrainN = 60, ValN = 12, TestN = 15;

    private static SuiteDefinition BuildSmall(string dir, int seed = 42, WordList? words = null) =>
        SuiteDataBuilder.Build(dir, seed, words ?? FakeWords.List(400), TrainN, ValN, TestN);

    private static Dictionary<string, string> Files(string dir) =>
        Directory.GetFiles(dir, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(dir, f).Replace('\\', '/'), File.ReadAllText);

    [Fact]
    public void Build_WritesSuiteYamlAndEverySplit_WithExactSizes()
    {
        using var tmp = new TestData.TempDir();
        var suite = BuildSmall(tmp["suite"]);

        Assert.Equal("amalgam-bundled", suite.Name);
        Assert.Equal(tmp["suite/base"], suite.BasePath);
        Assert.Equal(BundledTasks.All.Select(t => t.Name), suite.Tasks.Select(t => t.Name));
        foreach (var t in suite.Tasks)
        {
            var g = BundledTasks.Get(t.Name);
            Assert.Equal((g.Family, g.HeldOut, g.Metric), (t.Family, t.HeldOut, t.Metric));
            Assert.Equal(t.HeldOut ? null : Path.Combine(tmp["suite"], "experts", t.Name), t.ExpertPath);
            Assert.Equal(TrainN, suite.LoadSplit(t, "train").Count);
            Assert.Equal(ValN, suite.LoadSplit(t, "validation").Count);
            Assert.Equal(TestN, suite.LoadSplit(t, "test").Count);
        }
        var files = Files(tmp["suite"]).Keys.Order().ToList();
        Assert.Equal(1 + 3 * BundledTasks.All.Count, files.Count); // nothing else, no temporary files
        Assert.Contains("suite.yaml", files);
        Assert.Contains("data/reverse_word/validation.jsonl", files);
    }

    [Fact]
    public void Splits_AreDisjointByInput_AndTestWordsAreNeverTrainWords()
    {
        using var tmp = new TestData.TempDir();
        var suite = BuildSmall(tmp["suite"]);
        var allTrainText = string.Join("\n", suite.Tasks.SelectMany(t => suite.LoadSplit(t, "train")).Select(e => e.Input));
        foreach (var t in suite.Tasks)
        {
            var splits = Suite.Splits.ToDictionary(s => s, s => suite.LoadSplit(t, s).Select(e => e.Input).ToList());
            var all = splits.Values.SelectMany(x => x).ToList();
            Assert.Equal(all.Count, all.Distinct().Count()); // unique within and across splits
        }
        // The partition: a word of a test input of a single-word task appears in no training input of any task.
        foreach (var e in suite.LoadSplit("reverse_word", "test"))
        {
            var word = e.Input.Split('"')[1];
            Assert.DoesNotContain($"\"{word}\"", allTrainText);
            Assert.DoesNotContain($" {word},", allTrainText);
        }
    }

    [Fact]
    public void Build_IsDeterministic_AndTheSeedMatters()
    {
        using var tmp = new TestData.TempDir();
        BuildSmall(tmp["a"], seed: 42);
        BuildSmall(tmp["b"], seed: 42);
        BuildSmall(tmp["c"], seed: 43);
        var a = Files(tmp["a"]);
        Assert.Equal(a, Files(tmp["b"]));
        var c = Files(tmp["c"]);
        Assert.Equal(a["suite.yaml"], c["suite.yaml"]);
        Assert.All(a.Keys.Where(k => k.EndsWith(".jsonl")), k => Assert.NotEqual(a[k], c[k]));
    }

    [Fact]
    public void TestSplit_DoesNotDependOnTrainSize()
    {
        using var tmp = new TestData.TempDir();
        var words = FakeWords.List(400);
        SuiteDataBuilder.Build(tmp["a"], 9, words, train: 20, validation: 10, test: 10);
        SuiteDataBuilder.Build(tmp["b"], 9, words, train: 50, validation: 10, test: 10);
        var a = Files(tmp["a"]);
        var b = Files(tmp["b"]);
        Assert.All(a.Keys.Where(k => k.EndsWith("/test.jsonl") || k.EndsWith("/validation.jsonl")), k => Assert.Equal(a[k], b[k]));
    }

    [Fact]
    public void Build_Rebuilds_LeavingOtherFilesAlone()
    {
        using var tmp = new TestData.TempDir();
        string dir = tmp["suite"];
        Directory.CreateDirectory(Path.Combine(dir, "experts", "first_letter"));
        File.WriteAllText(Path.Combine(dir, "experts", "first_letter", "adapter_config.json"), "{}");
        BuildSmall(dir);
        BuildSmall(dir);
        Assert.True(File.Exists(Path.Combine(dir, "experts", "first_letter", "adapter_config.json")));
    }

    [Fact]
    public void Build_TooSmallWordListOrTooManyExamples_IsAClearError()
    {
        using var tmp = new TestData.TempDir();
        var e = Assert.Throws<InvalidOperationException>(() => SuiteDataBuilder.Build(tmp["s"], 1, FakeWords.List(30), 10, 5, 5));
        Assert.Contains("needs at least 6 for the list tasks", e.Message);

        // 100 words: 10 test words x 3 templates = at most 30 distinct test inputs for a single-word task.
        e = Assert.Throws<InvalidOperationException>(() => SuiteDataBuilder.Build(tmp["s"], 1, FakeWords.List(100), 10, 5, 40));
        Assert.Matches(@"^first_letter: only \d+ distinct test inputs after \d+ draws \(asked for 40\)", e.Message);
        Assert.False(File.Exists(tmp["s/suite.yaml"]));

        Assert.Throws<ArgumentOutOfRangeException>(() => SuiteDataBuilder.Build(tmp["s"], 1, FakeWords.List(100), 0, 5, 5));
    }

    [Fact]
    public void Characters_MakeATokenizerWithNoUnknowns()
    {
        using var tmp = new TestData.TempDir();
        var words = FakeWords.List(400);
        var suite = BuildSmall(tmp["suite"], words: words);
        var tok = AmalgamTokenizer.CreateCharLevel([BundledTasks.Characters(words)]);
        foreach (var t in suite.Tasks)
            foreach (var split in Suite.Splits)
                foreach (var e in suite.LoadSplit(t, split))
                {
                    string text = suite.Prompt(e) + e.Target + string.Concat(e.Options ?? []);
                    Assert.DoesNotContain(tok.UnkId!.Value, tok.Encode(text, addBos: true));
                }
    }

    [Fact]
    public void ExampleLines_LookAsDocumented()
    {
        using var tmp = new TestData.TempDir();
        var suite = BuildSmall(tmp["suite"]);
        var e = suite.LoadSplit("larger_number_choice", "test")[0];
        Assert.Equal(2, e.Options!.Count);
        Assert.Contains(e.Target, e.Options);
        var r = suite.LoadSplit("reverse_word", "train")[0];
        Assert.EndsWith("\nAnswer: ", suite.Prompt(r));
        Assert.StartsWith(r.Input, suite.Prompt(r));
    }
}
