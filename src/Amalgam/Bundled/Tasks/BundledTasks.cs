using System.Globalization;
using Amalgam.Evaluation.Metrics;
using Amalgam.Evaluation.Suites;

namespace Amalgam.Bundled.Tasks;

/// <summary>
/// The tasks of the bundled suite: twelve held-in tasks in four families (letters, case, numbers, lists), each
/// with an expert, and three held-out tasks without one that need skills of held-in families. Tasks of one
/// family share sentence shapes and vocabulary, so only the instruction's key words tell them apart.
/// </summary>
public static class BundledTasks
{
    public const string Letters = "letters", Case = "case", Numbers = "numbers", Lists = "lists";

    /// <summary>The list separator of the <c>lists</c> family.</summary>
    public const string ListSeparator = ", ";

    public const int MinListLength = 3, MaxListLength = 6;

    private static TemplatedTask.Draw Word(WordList words, Random rng, Func<string, string> target)
    {
        var w = words.Pick(rng);
        return new(new Dictionary<string, string> { ["w"] = w }, target(w));
    }

    private static TemplatedTask.Draw Number(WordList words, Random rng, int min, int max, Func<int, int> target)
    {
        int n = words.PickNumber(rng, min, max);
        return new(new Dictionary<string, string> { ["n"] = Str(n) }, Str(target(n)));
    }

    private static TemplatedTask.Draw Pair(WordList words, Random rng, bool withOptions)
    {
        var (a, b) = words.PickDistinctNumbers(rng, WordList.MinNumber, WordList.MaxNumber);
        string larger = Str(Math.Max(a, b));
        string[]? options = null;
        if (withOptions)
        {
            options = [Str(a), Str(b)];
            if (rng.Next(2) == 1) (options[0], options[1]) = (options[1], options[0]);
        }
        return new(new Dictionary<string, string> { ["a"] = Str(a), ["b"] = Str(b) }, larger, options);
    }

    private static TemplatedTask.Draw List(WordList words, Random rng, Func<IReadOnlyList<string>, string> target)
    {
        var items = words.PickDistinct(rng, rng.Next(MinListLength, MaxListLength + 1));
        return new(new Dictionary<string, string> { ["list"] = string.Join(ListSeparator, items) }, target(items));
    }

    private static string Str(int n) => n.ToString(CultureInfo.InvariantCulture);

    private static string Capitalize(string w) => char.ToUpperInvariant(w[0]) + w[1..];

    private static string Reverse(string w) => new([.. w.Reverse()]);

    private const string EM = MetricNames.ExactMatch;

    public static IReadOnlyList<ITaskGenerator> All { get; } =
    [
        // letters: one word; start / end / backwards
        new TemplatedTask("first_letter", Letters, false, EM,
        [
            "Which letter does the word \"{w}\" start with?",
            "Give the first letter of \"{w}\".",
            "Name the letter at the start of \"{w}\".",
        ], (r, w) => Word(w, r, x => x[..1])),
        new TemplatedTask("last_letter", Letters, false, EM,
        [
            "Which letter does the word \"{w}\" end with?",
            "Give the last letter of \"{w}\".",
            "Name the letter at the end of \"{w}\".",
        ], (r, w) => Word(w, r, x => x[^1..])),
        new TemplatedTask("reverse_word", Letters, false, EM,
        [
            "Spell the word \"{w}\" backwards.",
            "Give \"{w}\" with its letters in reverse order.",
            "Write the letters of \"{w}\" from the end to the start.",
        ], (r, w) => Word(w, r, Reverse)),

        // case: one word; capitals / capital first letter / twice
        new TemplatedTask("uppercase", Case, false, EM,
        [
            "Write the word \"{w}\" in capital letters.",
            "Give \"{w}\" with every letter in upper case.",
            "Rewrite \"{w}\" using only capital letters.",
        ], (r, w) => Word(w, r, x => x.ToUpperInvariant())),
        new TemplatedTask("capitalize", Case, false, EM,
        [
            "Write the word \"{w}\" with a capital first letter.",
            "Give \"{w}\" with only its first letter in upper case.",
            "Rewrite \"{w}\" so that it starts with a capital letter.",
        ], (r, w) => Word(w, r, Capitalize)),
        new TemplatedTask("repeat_word", Case, false, EM,
        [
            "Write the word \"{w}\" twice.",
            "Give \"{w}\" two times, separated by a space.",
            "Rewrite \"{w}\" so that it appears two times.",
        ], (r, w) => Word(w, r, x => x + " " + x)),

        // numbers: integers 0..999
        new TemplatedTask("next_number", Numbers, false, EM,
        [
            "What number comes after {n}?",
            "Give the number that is one more than {n}.",
            "Which number is just above {n} when counting?",
        ], (r, w) => Number(w, r, 0, 998, n => n + 1)),
        new TemplatedTask("previous_number", Numbers, false, EM,
        [
            "What number comes before {n}?",
            "Give the number that is one less than {n}.",
            "Which number is just below {n} when counting?",
        ], (r, w) => Number(w, r, 1, 999, n => n - 1)),
        // Not "which is larger": a base that merely copies one of two numbers would already score 50 %.
        new TemplatedTask("add_ten", Numbers, false, EM,
        [
            "What number is ten more than {n}?",
            "Give the number that is ten above {n}.",
            "Which number do you reach counting ten up from {n}?",
        ], (r, w) => Number(w, r, 0, 989, n => n + 10)),

        // lists: 3-6 distinct words joined by ", "
        new TemplatedTask("first_item", Lists, false, EM,
        [
            "Which word comes first in the list: {list}?",
            "Give the first word of the list {list}.",
            "Name the word at the start of the list: {list}.",
        ], (r, w) => List(w, r, items => items[0])),
        new TemplatedTask("last_item", Lists, false, EM,
        [
            "Which word comes last in the list: {list}?",
            "Give the last word of the list {list}.",
            "Name the word at the end of the list: {list}.",
        ], (r, w) => List(w, r, items => items[^1])),
        new TemplatedTask("count_items", Lists, false, EM,
        [
            "How many words are in the list: {list}?",
            "Give the number of words in the list {list}.",
            "Name how many words the list has: {list}.",
        ], (r, w) => List(w, r, items => Str(items.Count))),

        // held out: no expert; each needs skills of held-in families
        new TemplatedTask("last_item_first_letter", Lists + "+" + Letters, true, EM,
        [
            "Which letter does the last word of the list {list} start with?",
            "Give the first letter of the last word in the list {list}.",
            "Name the letter at the start of the last word of the list: {list}.",
        ], (r, w) => List(w, r, items => items[^1][..1])),
        new TemplatedTask("first_item_uppercase", Lists + "+" + Case, true, EM,
        [
            "Write the first word of the list {list} in capital letters.",
            "Give the first word of the list {list} with every letter in upper case.",
            "Rewrite the first word of the list {list} using only capital letters.",
        ], (r, w) => List(w, r, items => items[0].ToUpperInvariant())),
        new TemplatedTask("larger_number_choice", Numbers, true, MetricNames.OptionAccuracy,
        [
            "Which is larger, {a} or {b}?",
            "Of {a} and {b}, which number is bigger?",
            "Pick the greater of the numbers {a} and {b}.",
        ], (r, w) => Pair(w, r, withOptions: true)),
    ];

    public static ITaskGenerator Get(string name) =>
        All.FirstOrDefault(t => t.Name == name)
        ?? throw new ArgumentException($"no bundled task '{name}' ({string.Join(", ", All.Select(t => t.Name))})");

    /// <summary>
    /// Every character the bundled suite's data can contain with <paramref name="words"/> — the templates' text,
    /// the words' letters in both cases, the digits, the list separator and <paramref name="promptFormat"/> — sorted
    /// ordinally and distinct. It depends only on the word list, not on which examples were drawn, so a char-level
    /// tokenizer built from it (<c>AmalgamTokenizer.CreateCharLevel([Characters(words)])</c>) covers any generated data.
    /// </summary>
    public static string Characters(WordList words, string promptFormat = SuiteSpec.DefaultPromptFormat)
    {
        var chars = new SortedSet<char>();
        void Add(string s) { foreach (var c in s) chars.Add(c); }
        foreach (var t in All)
            foreach (var template in t.Templates)
                Add(System.Text.RegularExpressions.Regex.Replace(template, @"\{(w|n|a|b|list)\}", ""));
        foreach (var w in words.Words) { Add(w); Add(w.ToUpperInvariant()); }
        Add("0123456789");
        Add(ListSeparator);
        Add(promptFormat.Replace(SuiteSpec.InputPlaceholder, "", StringComparison.Ordinal));
        return new string([.. chars]);
    }

    /// <summary>Every distinct character of the given examples (inputs, targets, options), sorted ordinally.</summary>
    public static string Characters(IEnumerable<Example> examples)
    {
        var chars = new SortedSet<char>();
        foreach (var e in examples)
        {
            foreach (var c in e.Input) chars.Add(c);
            foreach (var c in e.Target) chars.Add(c);
            foreach (var o in e.Options ?? []) foreach (var c in o) chars.Add(c);
        }
        return new string([.. chars]);
    }
}
