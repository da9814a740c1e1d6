using Amalgam.Strategies;
using System.Buffers.Binary;
using Amalgam.Study;

namespace Amalgam.Tests.Study;

public class StudyPlotsTests
{
    static (int Width, int Height) PngSize(string file)
    {
        byte[] bytes = File.ReadAllBytes(file);
        Assert.True(bytes.Length > 1000, $"{file}: only {bytes.Length} bytes");
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, bytes[..8]);
        Assert.Equal("IHDR", System.Text.Encoding.ASCII.GetString(bytes, 12, 4));
        return (BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16)), BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20)));
    }

    /// <summary>Distinct colours in the decoded image: a blank or failed rendering has one or two.</summary>
    static int Colours(string file)
    {
        using var bitmap = SkiaSharp.SKBitmap.Decode(file);
        return bitmap.Pixels.Select(p => (uint)p).Distinct().Count();
    }

    [Fact]
    public void WritesBothPngsHeadless()
    {
        using var dir = new TestData.TempDir();
        var results = StudyFixture.Results();
        var (frontier, perTask) = StudyPlots.Write(results, dir.Path);
        Assert.Equal(dir["frontier.png"], frontier);
        Assert.Equal(dir["per_task.png"], perTask);
        Assert.Equal((StudyPlots.FrontierWidth, StudyPlots.FrontierHeight), PngSize(frontier));
        // 5 tasks and 8 strategies: max(700, 320 + 60·5) × max(450, 300 + 28·8)
        Assert.Equal((700, 524), PngSize(perTask));
        Assert.True(Colours(frontier) > 20);
        Assert.True(Colours(perTask) > 20);
        Assert.Equal(2, Directory.GetFiles(dir.Path).Length); // no temporary files left
    }

    [Fact]
    public void WideCostRangeUsesALogAxisAndStillRenders()
    {
        using var dir = new TestData.TempDir();
        var s = StudyFixture.Strategies();
        s[2] = StudyFixture.Strategy("ensemble-uniform", StrategyFamily.Ensemble, StrategyVariant.Uniform, 12.0, 0.6, 0.5, 0.3, 0.3, 0.3);
        var (frontier, _) = StudyPlots.Write(StudyFixture.Results(s), dir.Path);
        Assert.Equal((StudyPlots.FrontierWidth, StudyPlots.FrontierHeight), PngSize(frontier));
    }
}

public class EmbeddedFontTests
{
    /// <summary>The plots' text comes from the assembly, not from the OS's font folders.</summary>
    [Fact]
    public void ScottPlotResolvesTheEmbeddedFont()
    {
        string name = EmbeddedFont.Register();
        using var typeface = ScottPlot.Fonts.GetTypeface(name, bold: false, italic: false);
        Assert.Equal("DejaVu Sans", typeface.FamilyName);
        Assert.True(typeface.GlyphCount > 1000);
    }
}
