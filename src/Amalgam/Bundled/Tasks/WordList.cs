namespace Amalgam.Bundled.Tasks;

/// <summary>
/// The vocabulary the bundled tasks draw from: words of 3 to 7 lowercase ASCII letters (no apostrophes, capitals or
/// accents), deduplicated and sorted ordinally, plus the integers a split may use (0..999 unless partitioned).
/// The words come from Debian's word list (<c>/usr/share/dict/american-english</c>, package <c>wamerican</c>) or any
/// file with one word a line; the list is needed only to generate data, never to read a generated suite.
/// </summary>
public sealed class WordList
{
    public const string DefaultPath = "/usr/share/dict/american-english";
    public const int MinLength = 3, MaxLength = 7;
    public const int MinNumber = 0, MaxNumber = 999;

    private readonly string[] _words;
    private readonly int[] _numbers;

    private WordList(string[] words, int[] numbers)
    {
        _words = words;
        _numbers = numbers;
    }

    /// <summary>The words, sorted ordinally.</summary>
    public IReadOnlyList<string> Words => _words;

    /// <summary>The integers this list's examples may use, ascending (all of 0..999 unless partitioned).</summary>
    public IReadOnlyList<int> Numbers => _numbers;

    public int Count => _words.Length;

    /// <summary>Reads a word list file (default <see cref="DefaultPath"/>) and keeps the words that qualify.</summary>
    public static WordList Load(string? path = null)
    {
        path ??= DefaultPath;
        if (!File.Exists(path))
            throw new FileNotFoundException(path == DefaultPath
                ? $"{path}: not found; the bundled suite draws its words from Debian's word list: run `apt-get install wamerican` (or pass a word list file, one word a line)"
                : $"{path}: word list not found (one word a line; Debian's is {DefaultPath}, from `apt-get install wamerican`)", path);
        var list = FromWords(File.ReadLines(path));
        if (list.Count == 0)
            throw new InvalidDataException($"{path}: no words of {MinLength}-{MaxLength} lowercase ASCII letters");
        return list;
    }

    /// <summary>Keeps the words of 3-7 lowercase ASCII letters, deduplicated and sorted; numbers 0..999.</summary>
    public static WordList FromWords(IEnumerable<string> words)
    {
        var kept = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var raw in words)
        {
            var w = raw.Trim();
            if (Qualifies(w)) kept.Add(w);
        }
        return new WordList([.. kept], Enumerable.Range(MinNumber, MaxNumber - MinNumber + 1).ToArray());
    }

    public static bool Qualifies(string w) =>
        w.Length is >= MinLength and <= MaxLength && w.All(c => c is >= 'a' and <= 'z');

    /// <summary>A deterministic subset of <paramref name="count"/> words chosen by <paramref name="seed"/>, sorted.</summary>
    public WordList Subset(int count, int seed)
    {
        if (count < 0 || count > _words.Length)
            throw new ArgumentOutOfRangeException(nameof(count), count, $"the list has {_words.Length} words");
        var shuffled = (string[])_words.Clone();
        new Random(StableSeed.Of(seed, "word-subset")).Shuffle(shuffled);
        var chosen = shuffled[..count];
        Array.Sort(chosen, StringComparer.Ordinal);
        return new WordList(chosen, _numbers);
    }

    /// <summary>
    /// Splits the words and the numbers into three disjoint parts chosen by <paramref name="seed"/>: test and
    /// validation get <paramref name="heldFraction"/> each (at least one item), train the rest.
    /// </summary>
    public (WordList Train, WordList Validation, WordList Test) Partition(int seed, double heldFraction = 0.1)
    {
        if (heldFraction is <= 0 or >= 0.5) throw new ArgumentOutOfRangeException(nameof(heldFraction), heldFraction, "must be in (0, 0.5)");
        var (wTrain, wVal, wTest) = Split(_words, new Random(StableSeed.Of(seed, "partition-words")), heldFraction, StringComparer.Ordinal);
        var (nTrain, nVal, nTest) = Split(_numbers, new Random(StableSeed.Of(seed, "partition-numbers")), heldFraction, Comparer<int>.Default);
        return (new WordList(wTrain, nTrain), new WordList(wVal, nVal), new WordList(wTest, nTest));
    }

    private static (T[], T[], T[]) Split<T>(T[] items, Random rng, double fraction, IComparer<T> order)
    {
        if (items.Length < 3) throw new InvalidOperationException($"cannot partition {items.Length} items into three parts");
        var s = (T[])items.Clone();
        rng.Shuffle(s);
        int held = Math.Max(1, (int)Math.Round(items.Length * fraction));
        T[] test = s[..held], val = s[held..(2 * held)], train = s[(2 * held)..];
        foreach (var a in new[] { test, val, train }) Array.Sort(a, order);
        return (train, val, test);
    }

    public string Pick(Random rng) =>
        _words.Length > 0 ? _words[rng.Next(_words.Length)] : throw new InvalidOperationException("the word list is empty");

    /// <summary><paramref name="k"/> distinct words in random order.</summary>
    public IReadOnlyList<string> PickDistinct(Random rng, int k)
    {
        if (k > _words.Length) throw new InvalidOperationException($"cannot pick {k} distinct words from {_words.Length}");
        var chosen = new List<string>(k);
        var seen = new HashSet<int>();
        while (chosen.Count < k)
        {
            int i = rng.Next(_words.Length);
            if (seen.Add(i)) chosen.Add(_words[i]);
        }
        return chosen;
    }

    /// <summary>A number of this list within [<paramref name="min"/>, <paramref name="max"/>].</summary>
    public int PickNumber(Random rng, int min, int max)
    {
        int lo = LowerBound(min), hi = LowerBound(max + 1);
        if (hi <= lo) throw new InvalidOperationException($"no numbers in {min}..{max}");
        return _numbers[rng.Next(lo, hi)];
    }

    /// <summary>Two different numbers of this list within [<paramref name="min"/>, <paramref name="max"/>], in random order.</summary>
    public (int A, int B) PickDistinctNumbers(Random rng, int min, int max)
    {
        int lo = LowerBound(min), hi = LowerBound(max + 1);
        if (hi - lo < 2) throw new InvalidOperationException($"fewer than two numbers in {min}..{max}");
        int i = rng.Next(lo, hi), j;
        do j = rng.Next(lo, hi); while (j == i);
        return (_numbers[i], _numbers[j]);
    }

    private int LowerBound(int value)
    {
        int i = Array.BinarySearch(_numbers, value);
        return i >= 0 ? i : ~i;
    }
}

/// <summary>Seeds derived from a seed and names, stable across runs and platforms (FNV-1a, not string.GetHashCode).</summary>
public static class StableSeed
{
    public static int Of(int seed, params string[] parts)
    {
        ulong h = 14695981039346656037UL;
        void Mix(byte b) { h ^= b; h *= 1099511628211UL; }
        foreach (var b in BitConverter.GetBytes(seed)) Mix(b);
        foreach (var part in parts)
        {
            foreach (var b in System.Text.Encoding.UTF8.GetBytes(part)) Mix(b);
            Mix(0xFF); // separator: ("ab", "c") differs from ("a", "bc")
        }
        return (int)((h ^ (h >> 32)) & 0x7FFFFFFF);
    }
}
