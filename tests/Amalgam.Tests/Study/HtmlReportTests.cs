using System.Text.Json.Nodes;
using System.Xml;
using System.Xml.Linq;
using Amalgam.Study;

namespace Amalgam.Tests.Study;

/// <summary>The bundled study's results.json (26 strategies, 15 tasks) as `amalgam study` wrote it on 2026-12-01.</summary>
public static class BundledResults
{
    public static string File => Path.Combine(TestData.RepoRoot, "tests", "Amalgam.Tests", "Study", "Fixtures", "bundled-results.json");
    public static StudyResults Load() => StudyResultsFile.Load(File);
}

public class HtmlReportTests
{
    internal static XDocument Parse(string html)
    {
        using var reader = XmlReader.Create(new StringReader(html), new XmlReaderSettings { DtdProcessing = DtdProcessing.Ignore });
        return XDocument.Load(reader);
    }

    static XElement ById(XDocument doc, string id) =>
        doc.Descendants().SingleOrDefault(e => (string?)e.Attribute("id") == id) ?? throw new Xunit.Sdk.XunitException($"no element with id '{id}'");

    static bool HasClass(XElement e, string c) => ((string?)e.Attribute("class") ?? "").Split(' ').Contains(c);

    /// <summary>Adds intervals (score ± 0.05, clamped) and gap closed to every strategy, and bootstrap settings, as the bootstrap would.</summary>
    internal static JsonObject WithIntervals(StudyResults r)
    {
        var json = JsonNode.Parse(StudyResultsFile.ToJson(r))!.AsObject();
        var list = json["strategies"]!.AsArray();
        for (int i = 0; i < r.Strategies.Count; i++)
        {
            var s = r.Strategies[i];
            var o = list[i]!.AsObject();
            o["held_in_interval"] = new JsonArray(Math.Max(0, s.HeldInNormalized - 0.05), s.HeldInNormalized + 0.05);
            o["gap_closed"] = s.HeldInNormalized - 0.1;
            o["gap_closed_interval"] = new JsonArray(s.HeldInNormalized - 0.2, s.HeldInNormalized);
            if (s.HeldOut is double h) o["held_out_interval"] = new JsonArray(Math.Max(0, h - 0.05), Math.Min(1, h + 0.05));
        }
        json["bootstrap"] = new JsonObject { ["resamples"] = 1000, ["seed"] = 0, ["confidence"] = 0.95 };
        return json;
    }

    public static TheoryData<string> Studies => new() { "fixture", "bundled" };

    static StudyResults Study(string which) => which == "bundled" ? BundledResults.Load() : StudyFixture.Results();

    [Theory, MemberData(nameof(Studies))]
    public void Is_well_formed_and_names_no_url(string which)
    {
        var r = Study(which);
        string html = HtmlReport.Render(r);
        var doc = Parse(html);   // throws on any unclosed element or unknown entity
        Assert.Equal("html", doc.Root!.Name.LocalName);
        Assert.DoesNotContain("http://", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("https://", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("//cdn", html, StringComparison.OrdinalIgnoreCase);
        foreach (var e in doc.Descendants())
        {
            Assert.DoesNotContain(e.Name.LocalName, new[] { "link", "img", "iframe", "object", "embed", "image", "use" });
            foreach (var a in e.Attributes().Where(a => a.Name.LocalName is "src" or "href" or "xlink:href" or "action"))
                Assert.Fail($"<{e.Name.LocalName} {a.Name}=\"{a.Value}\">: the page must load nothing");
        }
        Assert.Empty(doc.Descendants().Where(e => e.Name.LocalName == "style").Select(e => e.Value).Where(css => css.Contains("url(") || css.Contains("@import")));
    }

    [Theory, MemberData(nameof(Studies))]
    public void Has_the_frontier_the_heatmap_and_the_recommendation(string which)
    {
        var r = Study(which);
        var doc = Parse(HtmlReport.Render(r));
        var points = ById(doc, "frontier").Descendants().Where(e => e.Name.LocalName == "g" && HasClass(e, "pt")).ToList();
        Assert.Equal(r.Strategies.Select(s => s.Name), points.Select(p => (string)p.Attribute("data-name")!));
        foreach (var (p, s) in points.Zip(r.Strategies))
            Assert.StartsWith(s.Name, (string)p.Attribute("data-tip")!);
        // The Pareto frontier: one vertex per frontier point.
        var line = ById(doc, "frontier").Descendants().Single(e => e.Name.LocalName == "polyline");
        Assert.Equal(ParetoFrontier.Compute(r).Count, ((string)line.Attribute("points")!).Split(' ').Length);

        var heatmap = ById(doc, "heatmap");
        var rows = heatmap.Descendants().Where(e => e.Name.LocalName == "tbody").Single().Elements().ToList();
        Assert.Equal(r.Strategies.Count + 1, rows.Count);      // the experts' row first
        Assert.All(rows, row => Assert.Equal(r.Tasks.Count, row.Elements().Count(c => c.Name.LocalName == "td")));
        var firstRow = rows[1].Elements().Where(c => c.Name.LocalName == "td").Select(c => c.Value).ToList();
        Assert.Equal(r.Tasks.Select(t => r.Strategies[0].PerTask.TryGetValue(t.Name, out var v) ? v.ToString("0.00", System.Globalization.CultureInfo.InvariantCulture) : "—"), firstRow);

        var picks = Recommendation.Compute(r);
        var recRows = ById(doc, "recommendation").Descendants().Single(e => e.Name.LocalName == "tbody").Elements().ToList();
        Assert.Equal(picks.Count, recRows.Count);
        foreach (var (pick, row) in picks.Zip(recRows))
            Assert.Equal(pick.Best?.Name ?? "no deployable strategy fits", row.Elements().ElementAt(1).Value);
        // Recommended points are ringed.
        Assert.Equal(picks.Where(p => p.Best is not null).Select(p => p.Best!.Name).Distinct().Order(),
            points.Where(p => HasClass(p, "rec")).Select(p => (string)p.Attribute("data-name")!).Order());
    }

    [Fact]
    public void Draws_error_bars_and_gap_closed_when_results_have_them()
    {
        var r = StudyFixture.Results();
        var plain = Parse(HtmlReport.Render(r));
        Assert.Empty(plain.Descendants().Where(e => HasClass(e, "err")));
        Assert.DoesNotContain(plain.Descendants(), e => (string?)e.Attribute("id") == "frontier-gap");
        Assert.Contains("has no intervals", plain.Root!.Value);

        var extras = ReportExtras.Read(WithIntervals(r), r.Strategies.Count);
        var doc = Parse(HtmlReport.Render(r, extras));
        Assert.Contains("resamples 1000, seed 0, confidence 0.95", doc.Root!.Value);
        foreach (var id in new[] { "frontier", "frontier-gap" })
        {
            var groups = ById(doc, id).Descendants().Where(e => e.Name.LocalName == "g").ToList();
            Assert.Equal(r.Strategies.Count, groups.Count);
            foreach (var g in groups)
            {
                // Bar from lo to hi around the point: y(lo) ≥ y(score) ≥ y(hi) in SVG's downward pixels.
                var d = (string)g.Elements().Single(e => HasClass(e, "err")).Attribute("d")!;
                var ys = System.Text.RegularExpressions.Regex.Match(d, @"^M[\d.]+ ([\d.]+)V([\d.]+)").Groups;
                double lo = double.Parse(ys[1].Value, System.Globalization.CultureInfo.InvariantCulture), hi = double.Parse(ys[2].Value, System.Globalization.CultureInfo.InvariantCulture);
                double cy = double.Parse((string)g.Elements().Last(e => e.Name.LocalName == "circle").Attribute("cy")!, System.Globalization.CultureInfo.InvariantCulture);
                Assert.True(lo >= cy - 0.05 && cy >= hi - 0.05 && lo > hi, $"{g.Attribute("data-name")}: {lo} {cy} {hi}");
            }
        }
        string summary = ById(doc, "summary").ToString();
        var router = r.Strategy("router-mlp");
        Assert.Contains($"{StudyFormat.Score(router.HeldInNormalized)} <span class=\"ci\">[{StudyFormat.Score(router.HeldInNormalized - 0.05)}, {StudyFormat.Score(router.HeldInNormalized + 0.05)}]</span>", summary);
        Assert.Contains(StudyFormat.Score(router.HeldInNormalized - 0.1), summary);   // gap closed
    }

    [Fact]
    public void Malformed_optional_fields_are_left_out_not_fatal()
    {
        var r = StudyFixture.Results();
        var json = JsonNode.Parse(StudyResultsFile.ToJson(r))!.AsObject();
        var s0 = json["strategies"]![0]!.AsObject();
        s0["held_in_interval"] = new JsonArray(0.9, 0.1);          // lo > hi
        s0["gap_closed"] = "high";
        s0["held_out_interval"] = new JsonArray(0.1);
        json["bootstrap"] = "yes";
        var (extras, bootstrap) = ReportExtras.Read(json, r.Strategies.Count);
        Assert.Equal(StrategyExtras.None, extras[0]);
        Assert.Null(bootstrap);
        Parse(HtmlReport.Render(r, (extras, bootstrap)));
    }

    [Fact]
    public void The_study_writes_report_html_beside_the_others()
    {
        using var dir = new TestData.TempDir();
        StudyOutputs.Write(StudyFixture.Results(), dir.Path);
        Assert.Equal(new[] { "frontier.png", "per_task.png", "report.html", "report.md", "results.json" },
            Directory.GetFiles(dir.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal(HtmlReport.Render(StudyResultsFile.Load(dir.Path)), File.ReadAllText(dir["report.html"]));
    }

    [Fact]
    public void Viridis_hits_its_stops()
    {
        Assert.Equal("#440154", HtmlReport.Viridis(0));
        Assert.Equal("#fde725", HtmlReport.Viridis(1));
        Assert.Equal("#fde725", HtmlReport.Viridis(1.5));
        Assert.Equal("#440154", HtmlReport.Viridis(-1));
        Assert.Equal("#31688e", HtmlReport.Viridis(3.0 / 9));
        // Halfway between #440154 and #482878: (0x44+0x48)/2 = 0x46, (0x01+0x28)/2 = 0x14 (20.5 rounds to even), (0x54+0x78)/2 = 0x66.
        Assert.Equal("#461466", HtmlReport.Viridis(0.5 / 9));
    }
}

public class SvgFrontierTests
{
    [Fact]
    public void Ticks_are_round_numbers_and_zero_is_not_negative()
    {
        var y = SvgFrontier.YTicks(-0.06, 1.06);
        Assert.Equal(new[] { 0.0, 0.2, 0.4, 0.6, 0.8, 1.0 }, y.Select(v => Math.Round(v, 9)));
        Assert.False(double.IsNegative(y[0]));
        Assert.Equal(new[] { 1.0, 2, 5, 10 }, SvgFrontier.XTicks(0.9, 14, log: true));
        Assert.Equal(new[] { 1.01, 1.02 }, SvgFrontier.XTicks(1.01, 1.02, log: true));  // no 1-2-5 tick inside: the ends
    }
}
