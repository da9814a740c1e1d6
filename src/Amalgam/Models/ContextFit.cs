namespace Amalgam.Models;

/// <summary>What to do with a prompt longer than the model's context: refuse it (the default), or cut tokens off one end.</summary>
public enum Truncation
{
    /// <summary>Refuse, naming the prompt (file:line for suite examples).</summary>
    None,
    /// <summary>Drop the oldest tokens (a leading BOS is kept): the end of the prompt, nearest the answer, survives.</summary>
    Left,
    /// <summary>Drop the newest tokens: the beginning of the prompt survives.</summary>
    Right,
}

/// <summary>
/// Fits a prompt into the model's context (max_position_embeddings) together with the positions reserved after
/// it (tokens to generate, an option to score), before any forward pass: refused by default, truncated only
/// when asked. Models with dynamic (NTK) rope scaling have no fixed context and pass through unchanged.
/// </summary>
public static class ContextFit
{
    /// <summary>The values of a --truncate option.</summary>
    public static readonly IReadOnlyList<string> Names = ["none", "left", "right"];

    /// <summary>Parses <c>none</c>, <c>left</c> or <c>right</c>, naming <paramref name="option"/> otherwise.</summary>
    public static Truncation Parse(string? text, string option = "--truncate") => text switch
    {
        null or "none" => Truncation.None,
        "left" => Truncation.Left,
        "right" => Truncation.Right,
        _ => throw new ArgumentException($"{option}: '{text}' is not one of {string.Join(", ", Names)}"),
    };

    /// <summary>The model's context in positions, or null where it has none (dynamic rope scaling).</summary>
    public static int? Context(DecoderConfig config) => config.Scaling.Type == "dynamic" ? null : config.MaxPositionEmbeddings;

    /// <summary>
    /// Refuses a whole sequence (a training example: prompt and target, which no truncation may cut) longer than
    /// the context, naming <paramref name="where"/> and <paramref name="what"/>.
    /// </summary>
    public static void Check(DecoderConfig config, int length, string where, string what)
    {
        if (Context(config) is int context && length > context)
            throw new ArgumentException($"{where}: {what} of {length:N0} tokens is longer than the model's context of {context:N0} positions (max_position_embeddings); shorten it");
    }

    /// <summary>
    /// <paramref name="prompt"/> itself when it and <paramref name="reserve"/> more positions fit, else the prompt
    /// cut as <paramref name="mode"/> says, or an <see cref="ArgumentException"/> starting with
    /// <paramref name="where"/> (e.g. <c>--prompt</c>, <c>data/x/test.jsonl:3</c>); <paramref name="reserved"/>
    /// names the reserve in the message (e.g. "32 tokens to generate").
    /// </summary>
    public static IReadOnlyList<long> Fit(DecoderConfig config, IReadOnlyList<long> prompt, int reserve, Truncation mode,
        string where, string reserved)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(reserve);
        if (Context(config) is not int context || (long)prompt.Count + reserve <= context) return prompt;
        string cause = $"the prompt's {prompt.Count:N0} tokens{(reserve > 0 ? $" and {reserved}" : "")} need {(long)prompt.Count + reserve:N0} positions, " +
                       $"more than the model's context of {context:N0} (max_position_embeddings)";
        if (mode == Truncation.None)
            throw new ArgumentException($"{where}: {cause}; shorten it or pass --truncate left|right");
        // A leading BOS marks the start of a document: left truncation keeps it and cuts after it.
        int keepFirst = mode == Truncation.Left && prompt.Count > 0 && config.BosId is int bos && prompt[0] == bos ? 1 : 0;
        int room = context - reserve - keepFirst;
        if (room < 1) throw new ArgumentException($"{where}: {cause}, and {reserved} leave no room for any of the prompt");
        return mode == Truncation.Right
            ? prompt.Take(room).ToArray()
            : [.. prompt.Take(keepFirst), .. prompt.Skip(prompt.Count - room)];
    }
}
