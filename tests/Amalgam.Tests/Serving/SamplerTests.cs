using Amalgam.Serving.Api;
using Amalgam.Serving.Engine;
using Amalgam.Tokenizers;

namespace Amalgam.Tests.Serving;

public sealed class SamplerTests
{
    static readonly float[] Logits = [2.0f, 1.0f, 0.5f, -1.0f, 0.0f];

    [Fact]
    public void TemperatureZeroIsTheFirstArgmax()
    {
        Assert.Equal(0, Sampler.Choose(Logits, 0, 1, new Random(1)));
        Assert.Equal(1, Sampler.Choose(new float[] { 1, 3, 3 }, 0, 1, new Random(1)));
    }

    [Fact]
    public void DrawsFollowTheSoftmaxAtTheTemperature()
    {
        const int trials = 40000;
        const double t = 0.7;
        var counts = new int[Logits.Length];
        var random = new Random(11);
        for (int i = 0; i < trials; i++) counts[Sampler.Choose(Logits, t, 1, random)]++;
        var p = Logits.Select(x => Math.Exp(x / t)).ToArray();
        double z = p.Sum();
        for (int k = 0; k < p.Length; k++)
        {
            double expected = p[k] / z, sd = Math.Sqrt(expected * (1 - expected) / trials);
            Assert.InRange(counts[k] / (double)trials, expected - 5 * sd, expected + 5 * sd);
        }
    }

    [Fact]
    public void TopPKeepsTheSmallestMostLikelySetReachingP()
    {
        // softmax(Logits) ≈ [0.563, 0.207, 0.126, 0.028, 0.076]: top_p 0.7 keeps tokens 0 and 1 only.
        var counts = new int[Logits.Length];
        var random = new Random(5);
        for (int i = 0; i < 20000; i++) counts[Sampler.Choose(Logits, 1, 0.7, random)]++;
        Assert.Equal(0, counts[2] + counts[3] + counts[4]);
        double share = counts[0] / 20000.0, expected = 0.563 / (0.563 + 0.207);
        Assert.InRange(share, expected - 0.02, expected + 0.02);
    }

    [Fact]
    public void SameSeedSameDraws()
    {
        long[] Draw(int seed) { var r = new Random(seed); return Enumerable.Range(0, 50).Select(_ => Sampler.Choose(Logits, 1.3, 0.95, r)).ToArray(); }
        Assert.Equal(Draw(42), Draw(42));
        Assert.NotEqual(Draw(42), Draw(43));
    }

    [Fact]
    public void TextAssemblerCutsAtTheEarliestStopAndHoldsBackPossibleStarts()
    {
        var tokenizer = TokenizerLoader.Load(ServingFixture.BaseDir);
        var ids = tokenizer.Encode("abcXYdef", false).Select(i => (long)i).ToList();
        var text = new TextAssembler(tokenizer, ["XYd", "cX"]);
        var sent = string.Concat(ids.Select(text.Add));
        Assert.True(text.Stopped);
        Assert.Equal("ab", text.Text);
        Assert.Equal("ab", sent + text.Flush());

        var plain = new TextAssembler(tokenizer, ["zzz"]);
        var parts = ids.Select(plain.Add).ToList();
        Assert.Equal("", parts[0]);   // the last len(stop) - 1 characters wait until they cannot start a stop
        Assert.Equal("abcXYdef", string.Concat(parts) + plain.Flush());
    }
}
