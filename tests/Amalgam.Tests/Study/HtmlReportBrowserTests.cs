using Amalgam.Study;
using Microsoft.Playwright;

namespace Amalgam.Tests.Study;

/// <summary>
/// A fact that needs a Chromium to drive: Debian's <c>chromium</c> package at /usr/bin/chromium, or the browser
/// named by AMALGAM_CHROMIUM. Skipped, saying so, where there is none (Playwright's own browser download is never used).
/// </summary>
public sealed class ChromiumFactAttribute : FactAttribute
{
    public static string Executable => Environment.GetEnvironmentVariable("AMALGAM_CHROMIUM") is { Length: > 0 } p ? p : "/usr/bin/chromium";

    public ChromiumFactAttribute()
    {
        if (!File.Exists(Executable))
            Skip = $"needs a Chromium at {Executable} (Debian/Ubuntu: apt-get install -y chromium; or set AMALGAM_CHROMIUM)";
    }
}

/// <summary>
/// report.html opened from disk in headless Chromium through Microsoft.Playwright; AMALGAM_TEST_ARTIFACTS=DIR keeps
/// the page and its screenshot there.
/// </summary>
public class HtmlReportBrowserTests
{
    [ChromiumFact]
    public async Task Renders_the_frontier_heatmap_and_recommendation_in_headless_chromium()
    {
        using var dir = new TestData.TempDir();
        var results = BundledResults.Load();
        var extras = ReportExtras.Read(HtmlReportTests.WithIntervals(results), results.Strategies.Count);
        string file = dir["report.html"];
        File.WriteAllText(file, HtmlReport.Render(results, extras));

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new() { ExecutablePath = ChromiumFactAttribute.Executable, Headless = true });
        var page = await browser.NewPageAsync(new() { ViewportSize = new() { Width = 1280, Height = 900 } });
        var requests = new List<string>();
        var errors = new List<string>();
        page.Request += (_, r) => requests.Add(r.Url);
        page.PageError += (_, e) => errors.Add(e);
        page.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text); };
        await page.GotoAsync(new Uri(file).AbsoluteUri, new() { WaitUntil = WaitUntilState.Load });

        foreach (var id in new[] { "frontier", "frontier-gap", "heatmap", "recommendation", "summary" })
        {
            var element = page.Locator($"#{id}");
            Assert.True(await element.IsVisibleAsync(), $"#{id} is not visible");
            var box = await element.BoundingBoxAsync();
            Assert.True(box is { Width: > 300, Height: > 80 }, $"#{id}: {box?.Width} × {box?.Height}");
        }
        Assert.Equal(results.Strategies.Count, await page.Locator("#frontier .pt").CountAsync());
        Assert.Equal((results.Strategies.Count + 1) * results.Tasks.Count, await page.Locator("#heatmap td").CountAsync());
        Assert.Equal(Recommendation.Compute(results).Count, await page.Locator("#recommendation tbody tr").CountAsync());

        // Hover labels: the tooltip appears with the point's name and goes away again.
        var tip = page.Locator("#tip");
        Assert.False(await tip.IsVisibleAsync());
        var best = Recommendation.Compute(results).Last().Best!;
        await page.Locator($"#frontier .pt[data-name='{best.Name}'] circle").Last.HoverAsync(new() { Force = true });
        Assert.True(await tip.IsVisibleAsync(), "the hover label did not appear");
        Assert.StartsWith(best.Name, await tip.TextContentAsync());
        await page.Mouse.MoveAsync(2, 2);
        Assert.False(await tip.IsVisibleAsync(), "the hover label stayed");

        // Screenshots: the whole page and the frontier alone, decoded and checked for content.
        byte[] full = await page.ScreenshotAsync(new() { FullPage = true });
        byte[] chart = await page.Locator("#frontier").ScreenshotAsync();
        if (Environment.GetEnvironmentVariable("AMALGAM_TEST_ARTIFACTS") is { Length: > 0 } keep)
        {
            // For a person to look at: the page and its screenshot.
            Directory.CreateDirectory(keep);
            File.Copy(file, Path.Combine(keep, "report.html"), overwrite: true);
            File.WriteAllBytes(Path.Combine(keep, "report.png"), full);
        }
        using (var bitmap = SkiaSharp.SKBitmap.Decode(full))
        {
            Assert.Equal(1280, bitmap.Width);
            Assert.True(bitmap.Height > 1500, $"page screenshot only {bitmap.Height} px high");
            Assert.True(bitmap.Pixels.Select(p => (uint)p).Distinct().Count() > 200, "page screenshot is nearly blank");
        }
        using (var bitmap = SkiaSharp.SKBitmap.Decode(chart))
        {
            Assert.True(bitmap.Width > 600 && bitmap.Height > 300, $"frontier screenshot {bitmap.Width} × {bitmap.Height}");
            // Each family's colour is on screen (Category10, as drawn).
            var colours = bitmap.Pixels.Select(p => $"#{p.Red:x2}{p.Green:x2}{p.Blue:x2}").ToHashSet();
            foreach (var family in results.Strategies.Select(s => s.Family).Distinct())
                Assert.Contains(SvgFrontier.Colour(family), colours);
        }

        Assert.Empty(errors);
        Assert.All(requests, url => Assert.StartsWith("file://", url));   // nothing but the page itself
    }
}
