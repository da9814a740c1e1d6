using System.Text.RegularExpressions;
using Amalgam.Bundled.Tasks;

namespace Amalgam.Tests.Bundled.Tasks;

using Amalgam.Evaluation.Suites;

public class TaskGeneratorTests
{
    private static readonly WordList Words = FakeWords.List(300);

    private static readonly string[] Expected =
    [
        "first_letter", "last_letter", "reverse_word", "uppercase", "capitalize", "repeat_word",
        "next_number", "previous_number", "add_ten", "first_item", "last_item", "count_items",
        "last_item_first_letter", "first_item_uppercase", "larger_number_choice",
    ];

    public static TheoryData<string> TaskNames => new(Expected);

    /// <summary>A template as a regex capturing its slots.</summary>
    private static Regex Pattern(string template)
    {
        var p = Regex.Escape(template)
            .Replace(@"\{w}", "(?<w>[a-z]+)")
            .Replace(@"\{n}", @"(?<n>\d+)")
            .Replace(@"\{a}", @"(?<a>\d+)")
            .Replace(@"\{b}", @"(?<b>\d+)")
            .Replace(@"\{list}", "(?<list>[a-z]+(?:, [a-z]+)*)");
        return new Regex("^" + p + "$");
    }

    [Fact]
    public void Catalog_HasExactlyTheBundledTasks()
    {
        Assert.Equal(Expected, BundledTasks.All.Select(t => t.Name));
        Assert.Equal(["last_item_first_letter", "first_item_uppercase", "larger_number_choice"],
            BundledTasks.All.Where(t => t.HeldOut).Select(t => t.Name));
        var families = BundledTasks.All.Where(t => !t.HeldOut).GroupBy(t => t.Family).ToDictionary(g => g.Key, g => g.Select(t => t.Name).ToArray());
        Assert.Equal(["first_letter", "last_letter", "reverse_word"], families["letters"]);
        Assert.Equal(["uppercase", "capitalize", "repeat_word"], families["case"]);
        Assert.Equal(["next_number", "previous_number", "add_ten"], families["numbers"]);
        Assert.Equal(["first_item", "last_item", "count_items"], families["lists"]);
        Assert.All(BundledTasks.All, t => Assert.Equal(t.Name == "larger_number_choice" ? "option_accuracy" : "exact_match", t.Metric));
        Assert.Same(BundledTasks.All[2], BundledTasks.Get("reverse_word"));
        Assert.Throws<ArgumentException>(() => BundledTasks.Get("nope"));
    }

    [Theory]
    [MemberData(nameof(TaskNames))]
    public void Templates_AreThreeDistinctUnambiguousAndNeverNameTheTask(string name)
    {
        var task = BundledTasks.Get(name);
        Assert.Equal(3, task.Templates.Count);
        Assert.Equal(3, task.Templates.Distinct().Count());
        foreach (var t in task.Templates)
        {
            Assert.DoesNotContain(name, t);
            Assert.DoesNotContain("_", t);
        }
        // No template's pattern accepts another template's text, so each input has one template.
        var rng = new Random(3);
        for (int i = 0; i < 200; i++)
        {
            var e = task.Generate(rng, Words);
            Assert.Single(task.Templates, t => Pattern(t).IsMatch(e.Input));
        }
    }

    [Theory]
    [MemberData(nameof(TaskNames))]
    public void Targets_AreCorrect_AndEveryTemplateIsUsed(string name)
    {
        var task = BundledTasks.Get(name);
        var rng = new Random(11);
        var used = new int[3];
        for (int i = 0; i < 1000; i++)
        {
            var e = task.Generate(rng, Words);
            int which = task.Templates.Select((t, k) => (t, k)).Single(p => Pattern(p.t).IsMatch(e.Input)).k;
            used[which]++;
            var m = Pattern(task.Templates[which]).Match(e.Input);
            Assert.Equal(Recompute(name, m, e), e.Target);
            if (name == "larger_number_choice")
            {
                Assert.NotNull(e.Options);
                Assert.Equal(new[] { m.Groups["a"].Value, m.Groups["b"].Value }.Order(), e.Options!.Order());
            }
            else
            {
                Assert.Null(e.Options);
            }
        }
        Assert.All(used, count => Assert.InRange(count, 250, 420)); // about a third each
    }

    /// <summary>The target computed again from the input alone, independently of the generators.</summary>
    private static string Recompute(string name, Match m, Example e)
    {
        string w = m.Groups["w"].Value;
        if (m.Groups["w"].Success)
        {
            Assert.Contains(w, Words.Words);
        }
        int N(string g) => int.Parse(m.Groups[g].Value);
        string[] list = m.Groups["list"].Success ? m.Groups["list"].Value.Split(", ") : [];
        if (list.Length > 0)
        {
            Assert.InRange(list.Length, 3, 6);
            Assert.Equal(list.Length, list.Distinct().Count());
            Assert.All(list, x => Assert.Contains(x, Words.Words));
        }
        if (m.Groups["a"].Success)
        {
            Assert.NotEqual(N("a"), N("b"));
            Assert.InRange(N("a"), 0, 999);
            Assert.InRange(N("b"), 0, 999);
            Assert.Equal(m.Groups["a"].Value, N("a").ToString()); // no leading zeros
        }
        return name switch
        {
            "first_letter" => w.Substring(0, 1),
            "last_letter" => w.Substring(w.Length - 1),
            "reverse_word" => string.Concat(w.Reverse()),
            "uppercase" => w.ToUpperInvariant(),
            "capitalize" => w.Substring(0, 1).ToUpperInvariant() + w.Substring(1),
            "repeat_word" => w + " " + w,
            "next_number" => N("n") is var n && n is >= 0 and <= 998 ? (n + 1).ToString() : throw new Xunit.Sdk.XunitException($"n = {n}"),
            "previous_number" => N("n") is var p && p is >= 1 and <= 999 ? (p - 1).ToString() : throw new Xunit.Sdk.XunitException($"n = {p}"),
            "add_ten" => N("n") is var t && t is >= 0 and <= 989 ? (t + 10).ToString() : throw new Xunit.Sdk.XunitException($"n = {t}"),
            "larger_number_choice" => Math.Max(N("a"), N("b")).ToString(),
            "first_item" => list[0],
            "last_item" => list[^1],
            "count_items" => list.Length.ToString(),
            "last_item_first_letter" => list[^1].Substring(0, 1),
            "first_item_uppercase" => list[0].ToUpperInvariant(),
            _ => throw new Xunit.Sdk.XunitException($"no check for {name} ({e})"),
        };
    }

    [Fact]
    public void NumbersCoverTheirRanges()
    {
        var rng = new Random(5);
        var next = BundledTasks.Get("next_number");
        var prev = BundledTasks.Get("previous_number");
        var nexts = Enumerable.Range(0, 20000).Select(_ => int.Parse(next.Generate(rng, Words).Target)).ToHashSet();
        var prevs = Enumerable.Range(0, 20000).Select(_ => int.Parse(prev.Generate(rng, Words).Target)).ToHashSet();
        Assert.Equal(Enumerable.Range(1, 999), nexts.Order());  // n in 0..998
        Assert.Equal(Enumerable.Range(0, 999), prevs.Order());  // n in 1..999
    }

    [Fact]
    public void ListLengthsCoverThreeToSix_AndOptionOrderVaries()
    {
        var rng = new Random(8);
        var counts = Enumerable.Range(0, 400).Select(_ => BundledTasks.Get("count_items").Generate(rng, Words).Target).ToHashSet();
        Assert.Equal(["3", "4", "5", "6"], counts.Order());
        var choice = BundledTasks.Get("larger_number_choice");
        var targetFirst = Enumerable.Range(0, 400).Count(_ => choice.Generate(rng, Words) is var e && e.Options![0] == e.Target);
        Assert.InRange(targetFirst, 150, 250);
    }

    [Fact]
    public void FamiliesReadAlike_TasksOfAFamilyShareSentenceOpenings()
    {
        foreach (var family in BundledTasks.All.GroupBy(t => t.Family.Split('+')[0]))
            foreach (var a in family)
                foreach (var b in family)
                    Assert.NotEmpty(a.Templates.Select(First).Intersect(b.Templates.Select(First)));
        static string First(string template) => template.Split(' ')[0];
    }

    [Fact]
    public void Characters_CoverEveryGeneratedText()
    {
        string chars = BundledTasks.Characters(Words);
        Assert.Equal(new string([.. chars.Distinct().Order()]), chars);
        var rng = new Random(2);
        var examples = BundledTasks.All.SelectMany(t => Enumerable.Range(0, 200).Select(_ => t.Generate(rng, Words))).ToList();
        var used = BundledTasks.Characters(examples) + SuiteSpec.DefaultPromptFormat.Replace("{input}", "");
        Assert.All(used, c => Assert.Contains(c, chars));
        foreach (var c in "\n:\"?,. 0123456789") Assert.Contains(c, chars);
        Assert.DoesNotContain('{', chars);
        Assert.DoesNotContain('_', chars);
    }
}
