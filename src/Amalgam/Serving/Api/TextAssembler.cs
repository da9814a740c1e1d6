using Amalgam.Tokenizers;

namespace Amalgam.Serving.Api;

/// <summary>
/// Turns generated ids into text as they arrive: the whole continuation is decoded each time (so multi-token
/// characters come out whole), stop strings end it (the stop string itself is not returned), and while streaming,
/// text that could still turn out to be the start of a stop string, or an unfinished character, is held back.
/// </summary>
public sealed class TextAssembler(ITextTokenizer tokenizer, IReadOnlyList<string> stops)
{
    private readonly List<int> ids = [];
    private readonly int holdBack = stops.Count == 0 ? 0 : stops.Max(s => s.Length) - 1;
    private int emitted;

    public string Text { get; private set; } = "";
    public bool Stopped { get; private set; }

    /// <summary>Adds a token; returns the text that is now safe to send (empty when nothing new is).</summary>
    public string Add(long token)
    {
        if (Stopped) return "";
        ids.Add((int)token);
        Text = tokenizer.Decode(ids);
        foreach (var stop in stops)
        {
            int at = Text.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0 && (!Stopped || at < Text.Length))
            {
                Text = Text[..at];
                Stopped = true;
            }
        }
        if (Stopped) return Flush();
        int safe = Math.Max(emitted, Text.Length - holdBack);
        while (safe > emitted && Text[safe - 1] == '\uFFFD') safe--;
        var delta = Text[emitted..safe];
        emitted = safe;
        return delta;
    }

    /// <summary>Whatever is left to send (at the end of generation).</summary>
    public string Flush()
    {
        if (emitted >= Text.Length) return "";
        var rest = Text[emitted..];
        emitted = Text.Length;
        return rest;
    }
}
