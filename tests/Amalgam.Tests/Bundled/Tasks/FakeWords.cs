using Amalgam.Bundled.Tasks;

namespace Amalgam.Tests.Bundled.Tasks;

/// <summary>A small word list written by the tests, so they do not need Debian's wamerican.</summary>
public static class FakeWords
{
    /// <summary>Lines a real word list has that must be filtered out.</summary>
    public static readonly string[] Rejected = ["Aaron", "don't", "café", "ox", "a", "abcdefgh", "ABC", "x-ray", "mr.", "naïve", ""];

    /// <summary><paramref name="count"/> distinct pseudo-words of 3-7 lowercase letters, plus rejected lines and duplicates, shuffled.</summary>
    public static IReadOnlyList<string> Lines(int count = 400, int seed = 7)
    {
        var rng = new Random(seed);
        var words = new HashSet<string>();
        while (words.Count < count)
        {
            int len = rng.Next(3, 8);
            words.Add(new string(Enumerable.Range(0, len).Select(_ => (char)('a' + rng.Next(26))).ToArray()));
        }
        var lines = words.Concat(Rejected).Concat(words.Take(10)).ToList();
        rng.Shuffle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(lines));
        return lines;
    }

    /// <summary>Writes <see cref="Lines"/> to <c>words.txt</c> in <paramref name="tmp"/> and returns its path.</summary>
    public static string WriteFile(TestData.TempDir tmp, int count = 400, int seed = 7)
    {
        string path = tmp["words.txt"];
        File.WriteAllLines(path, Lines(count, seed));
        return path;
    }

    public static WordList List(int count = 400, int seed = 7) => WordList.FromWords(Lines(count, seed));
}
