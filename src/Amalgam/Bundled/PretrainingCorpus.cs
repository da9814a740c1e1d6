namespace Amalgam.Bundled;

/// <summary>
/// Text the bundled base model is trained on from scratch. It teaches the suite's alphabet, its question/answer
/// format and the raw skills the tasks build on (reading a quoted word, a number or a list; copying; picking a
/// position; counting; changing case; adding; reversing digits), through questions that are NOT the suite's tasks: "second" where
/// the tasks ask for first or last, lower case where they ask for capitals, +10 nowhere... so the base answers the
/// held-in tasks wrongly (measured in suite/README.md) and each expert only has to redirect a skill it already has.
/// </summary>
public static class PretrainingCorpus
{
    delegate (string Question, string Answer) Item(Random rng, IReadOnlyList<string> words);

    static string W(Random r, IReadOnlyList<string> words) => words[r.Next(words.Count)];

    static string[] List(Random r, IReadOnlyList<string> words)
    {
        int n = r.Next(3, 7);
        var items = new HashSet<string>();
        while (items.Count < n) items.Add(W(r, words));
        return items.OrderBy(_ => r.Next()).ToArray();
    }

    static (string, string) Pick(Random r, string[] templates, string answer, params object[] args) =>
        (string.Format(templates[r.Next(templates.Length)], args), answer);

    static readonly Item[] Items =
    [
        (r, w) => { var x = W(r, w); return Pick(r, ["Say the word \"{0}\".", "Repeat the word \"{0}\".", "Copy the word \"{0}\"."], x, x); },
        (r, w) => { int n = r.Next(0, 1000); return Pick(r, ["Say the number {0}.", "Repeat the number {0}.", "Copy the number {0}."], n.ToString(), n); },
        (r, w) => { var l = string.Join(", ", List(r, w)); return Pick(r, ["Say the list: {0}.", "Repeat the list {0}.", "Copy this list: {0}."], l, l); },
        (r, w) => { var x = W(r, w); return Pick(r, ["Which letter comes second in the word \"{0}\"?", "Give the second letter of \"{0}\".", "Name the letter after the first one in \"{0}\"."], x[1].ToString(), x); },
        (r, w) => { var l = List(r, w); return Pick(r, ["Which word comes second in the list: {0}?", "Give the second item of this list: {0}.", "Name the word after the first one in the list {0}."], l[1], string.Join(", ", l)); },
        (r, w) => { var x = W(r, w); return Pick(r, ["How many letters are in the word \"{0}\"?", "Give the number of letters in \"{0}\".", "Count the letters of \"{0}\"."], x.Length.ToString(), x); },
        (r, w) => { var x = W(r, w); return Pick(r, ["Write the word \"{0}\" in small letters.", "Give \"{0}\" in lower case.", "Write \"{0}\" without capitals."], x, x.ToUpperInvariant()); },
        (r, w) => { int a = r.Next(0, 500), b = r.Next(0, 500); return Pick(r, ["What is {0} plus {1}?", "Add {0} and {1}.", "Give the sum of {0} and {1}."], (a + b).ToString(), a, b); },
        (r, w) => { int n = r.Next(0, 1000); var s = n.ToString(); return Pick(r, ["Which digit does {0} start with?", "Give the first digit of {0}.", "Name the leading digit of {0}."], s[..1], n); },
        (r, w) => { int n = r.Next(10, 100000); var s = n.ToString(); return Pick(r, ["Write the digits of {0} in reverse order.", "Give {0} read from right to left.", "Reverse the digits of {0}."], string.Concat(s.Reverse()), n); },
    ];

    /// <summary>
    /// <paramref name="count"/> (prompt, answer) pairs, the prompt already in <paramref name="promptFormat"/>;
    /// deterministic for a seed. The base is trained with the loss on the answers, which is where the skills are
    /// (the quoted words themselves are random and would dominate a loss on every token).
    /// </summary>
    public static IReadOnlyList<(string Prompt, string Answer)> Generate(IReadOnlyList<string> words, int count, int seed, string promptFormat)
    {
        var rng = new Random(seed);
        var texts = new List<(string, string)>(count);
        for (int i = 0; i < count; i++)
        {
            var (question, answer) = Items[rng.Next(Items.Length)](rng, words);
            texts.Add((promptFormat.Replace("{input}", question), answer));
        }
        return texts;
    }
}
