namespace Amalgam.Serving.Engine;

/// <summary>
/// Picks the next token from one row of float32 scores (logits or log-probabilities; both give the same choice):
/// temperature 0 is the argmax (first index on ties, as torch's argmax); otherwise softmax(scores / T) restricted
/// to the smallest set of most likely tokens whose probability reaches top_p, then one draw.
/// </summary>
public static class Sampler
{
    public static long Choose(ReadOnlySpan<float> scores, double temperature, double topP, Random random)
    {
        if (temperature <= 0) return ArgMax(scores);
        int n = scores.Length;
        double max = double.NegativeInfinity;
        for (int i = 0; i < n; i++) max = Math.Max(max, scores[i]);
        var p = new double[n];
        double total = 0;
        for (int i = 0; i < n; i++) total += p[i] = Math.Exp((scores[i] - max) / temperature);
        var order = Enumerable.Range(0, n).ToArray();
        Array.Sort(order, (a, b) => p[b].CompareTo(p[a]) is var c && c != 0 ? c : a.CompareTo(b));
        // The nucleus: most likely first, until the kept mass reaches top_p (at least one token).
        int kept = 0;
        double mass = 0;
        while (kept < n && (kept == 0 || mass < topP * total)) mass += p[order[kept++]];
        double u = random.NextDouble() * mass;
        for (int i = 0; i < kept; i++)
        {
            u -= p[order[i]];
            if (u < 0) return order[i];
        }
        return order[kept - 1];
    }

    public static long ArgMax(ReadOnlySpan<float> scores)
    {
        int best = 0;
        for (int i = 1; i < scores.Length; i++) if (scores[i] > scores[best]) best = i;
        return best;
    }

    /// <summary>log-softmax of one row, in double.</summary>
    public static double[] LogSoftmax(ReadOnlySpan<float> logits)
    {
        double max = double.NegativeInfinity;
        foreach (var x in logits) max = Math.Max(max, x);
        double sum = 0;
        foreach (var x in logits) sum += Math.Exp(x - max);
        double lse = max + Math.Log(sum);
        var result = new double[logits.Length];
        for (int i = 0; i < logits.Length; i++) result[i] = logits[i] - lse;
        return result;
    }
}
