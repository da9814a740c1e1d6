using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Amalgam.Tensors;

namespace Amalgam.Study;

/// <summary>
/// report.html: one self-contained page (inline CSS, SVG and a few lines of script; no URL, no font, no network):
/// the recommendation per budget, the frontier of held-in normalised score (and of gap closed, when results.json has
/// it) against relative FLOPs with error bars and hover labels, the summary with both quality measures and their
/// intervals, the per-task heatmap and the findings. Every number is printed by <see cref="StudyFormat"/> from the
/// values results.json holds. The markup is XHTML-compatible (every element closed, only numeric character
/// references), so an XML parser reads it too.
/// </summary>
public static class HtmlReport
{
    public const string FileName = "report.html";

    /// <summary>Writes report.html into <paramref name="outDir"/> (created if needed) atomically; returns its path.</summary>
    public static string Write(StudyResults results, string outDir)
    {
        Directory.CreateDirectory(outDir);
        string path = Path.Combine(outDir, FileName);
        AtomicFile.WriteAllText(path, Render(results));
        return path;
    }

    public static string Render(StudyResults r) => Render(r, ReportExtras.Read(r));

    /// <summary>The page for <paramref name="r"/> with the optional fields of <paramref name="extras"/> (see <see cref="ReportExtras"/>).</summary>
    public static string Render(StudyResults r, (IReadOnlyList<StrategyExtras> Strategies, JsonObject? Bootstrap) extras)
    {
        var x = extras.Strategies;
        var picks = Recommendation.Compute(r);
        var recommended = picks.Where(p => p.Best is not null).Select(p => p.Best!.Name).ToHashSet(StringComparer.Ordinal);
        int heldIn = r.HeldInTasks.Count(), heldOut = r.HeldOutTasks.Count();
        bool anyGap = x.Any(e => e.GapClosed is not null), anyInterval = x.Any(e => e.HeldIn is not null);

        var h = new StringBuilder();
        h.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>")
         .Append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>")
         .Append($"<title>Study: {E(r.Suite)}</title><style>{Css}</style></head><body>");
        h.Append($"<h1>Study: {E(r.Suite)}</h1>");
        h.Append($"<p id=\"about\">{r.Strategies.Count} strategies on {heldIn} held-in and {heldOut} held-out tasks ({E(r.Split)} split), seed {r.Seed}, " +
                 $"{r.Machine.Cores} cores ({E(r.Machine.Device)}), {StudyFormat.Seconds(r.TotalSeconds)} s in all, {r.CreatedAt.UtcDateTime:yyyy-MM-dd HH:mm} UTC. " +
                 $"Base model <code>{E(r.BaseModel.Path)}</code> ({E(r.BaseModel.Architecture)}, {StudyFormat.Count(r.BaseModel.Parameters)} parameters).</p>");
        h.Append("<p>Held-in normalised: mean over held-in tasks of score ÷ the task's expert score (1 = every expert on its own task). " +
                 "Gap closed: mean over held-in tasks of (score − base) ÷ (expert − base). Held-out: mean score on tasks no expert was trained for. " +
                 "Relative FLOPs: FLOPs per example over the base model's.");
        h.Append(anyInterval ? " Bars and brackets: 95 % bootstrap intervals" + Bootstrap(extras.Bootstrap) + ".</p>"
                             : " This results.json has no intervals, so no error bars are drawn.</p>");

        h.Append("<section><h2>Recommendation per budget</h2><table id=\"recommendation\"><thead><tr><th>budget</th><th>strategy</th><th>family</th>" +
                 "<th>held-in normalised</th><th>gap closed</th><th>held-out</th><th>relative FLOPs</th><th>stored parameters</th></tr></thead><tbody>");
        foreach (var pick in picks)
        {
            if (pick.Best is not { } b) { h.Append($"<tr><td>{E(pick.Budget.Name)}</td><td colspan=\"7\">no deployable strategy fits</td></tr>"); continue; }
            var e = x[r.Strategies.IndexOf(b)];
            h.Append($"<tr><td>{E(pick.Budget.Name)}</td><td><code>{E(b.Name)}</code></td><td>{E(b.Family)}</td>")
             .Append($"<td>{Score(b.HeldInNormalized, e.HeldIn)}</td><td>{Score(e.GapClosed, e.GapClosedInterval)}</td><td>{Score(b.HeldOut, e.HeldOut)}</td>")
             .Append($"<td>{StudyFormat.Flops(b.RelativeFlops)}×</td><td>{StudyFormat.Count(b.StoredParameters)}</td></tr>");
        }
        h.Append("</tbody></table>");
        var notes = new List<string>();
        foreach (var pick in picks)
        {
            if (pick.Top is { } top && pick.Best is { } best && top.Name != best.Name)
                notes.Add($"{E(pick.Budget.Name)}: the best score, <code>{E(top.Name)}</code> {StudyFormat.Score(top.HeldInNormalized)} at {StudyFormat.Flops(top.RelativeFlops)}×, is within noise of the pick, so the cheaper one is picked");
            else if (pick.WithinNoise.Count > 1)
                notes.Add($"{E(pick.Budget.Name)}: within noise of the pick: {string.Join(", ", pick.WithinNoise.Where(n => n != pick.Best?.Name).Select(n => $"<code>{E(n)}</code>"))}");
            if (pick.JustMissed is { } m)
                notes.Add($"{E(pick.Budget.Name)}: just over this budget, <code>{E(m.Name)}</code> scores {StudyFormat.Score(m.HeldInNormalized)} at {StudyFormat.Flops(m.RelativeFlops)}×");
            if (pick.WorthDeploying == false)
                notes.Add($"{E(pick.Budget.Name)}: <strong>nothing in this budget is worth deploying</strong> (it does not beat the base model beyond noise)");
        }
        if (notes.Count > 0) h.Append("<ul id=\"recommendation-notes\">").Append(string.Concat(notes.Select(n => $"<li>{n}.</li>"))).Append("</ul>");
        var unlisted = picks.SelectMany(p => p.BetterNotDeployable).Distinct().ToList();
        if (unlisted.Count > 0) h.Append($"<p>Ranked above a pick but not deployable: {string.Join(", ", unlisted.Select(n => $"<code>{E(n)}</code>"))}.</p>");
        h.Append("</section>");

        h.Append("<section><h2>Quality against cost</h2><p>Hover over (or tab to) a point for its name and numbers; rings mark the recommended strategies, " +
                 "hollow points are not deployable, the dashed line is the Pareto frontier of the deployable ones.</p>");
        h.Append(Legend());
        var normalised = r.Strategies.Select((s, i) => new SvgPoint(s.Name, s.Family, s.RelativeFlops, s.HeldInNormalized, x[i].HeldIn, s.Deployable,
            recommended.Contains(s.Name), Tip(s, x[i]))).ToList();
        h.Append("<figure>").Append(SvgFrontier.Render("frontier", "held-in normalised score (expert = 1)", normalised, ParetoFrontier.Compute(r)))
         .Append("<figcaption>Held-in normalised score against relative FLOPs.</figcaption></figure>");
        if (anyGap)
        {
            var gap = r.Strategies.Select((s, i) => (s, e: x[i])).Where(p => p.e.GapClosed is not null)
                .Select(p => new SvgPoint(p.s.Name, p.s.Family, p.s.RelativeFlops, p.e.GapClosed!.Value, p.e.GapClosedInterval, p.s.Deployable,
                    recommended.Contains(p.s.Name), Tip(p.s, p.e))).ToList();
            var gapFrontier = ParetoFrontier.Compute(gap.Where(p => p.Deployable).Select(p => new FrontierPoint(p.Name, p.Cost, p.Score)));
            h.Append("<figure>").Append(SvgFrontier.Render("frontier-gap", "gap closed (base = 0, expert = 1)", gap, gapFrontier))
             .Append("<figcaption>Gap closed against relative FLOPs.</figcaption></figure>");
        }
        else h.Append("<p>This results.json has no gap closed, so only the normalised frontier is drawn.</p>");
        h.Append("</section>");

        h.Append("<section><h2>Summary</h2><table id=\"summary\"><thead><tr><th>strategy</th><th>family</th><th>variant</th><th>held-in normalised</th>" +
                 "<th>gap closed</th><th>held-out</th><th>relative FLOPs</th><th>tokens/s</th><th>stored parameters</th><th>fit s</th><th>router features</th><th>deployable</th></tr></thead><tbody>");
        for (int i = 0; i < r.Strategies.Count; i++)
        {
            var s = r.Strategies[i];
            h.Append($"<tr><td><code>{E(s.Name)}</code></td><td>{E(s.Family)}</td><td>{E(s.Variant ?? "")}</td><td>{Score(s.HeldInNormalized, x[i].HeldIn)}</td>")
             .Append($"<td>{Score(x[i].GapClosed, x[i].GapClosedInterval)}</td><td>{Score(s.HeldOut, x[i].HeldOut)}</td><td>{StudyFormat.Flops(s.RelativeFlops)}</td>")
             .Append($"<td>{StudyFormat.TokensPerSecond(s.TokensPerSecond)}</td><td>{StudyFormat.Count(s.StoredParameters)}</td><td>{StudyFormat.Seconds(s.FitSeconds)}</td>")
             .Append($"<td>{E(x[i].FeatureSource ?? "")}</td><td>{(s.Deployable ? "yes" : "no")}</td></tr>");
        }
        h.Append("</tbody></table>");
        if (FeatureSources.Line(r) is not null)
        {
            h.Append("<p id=\"feature-sources\">Router feature sources, the best routing strategy of each (FLOPs include the features' pass): ");
            h.Append(string.Join("; ", FeatureSources.Compute(r).Select(f => $"<strong>{E(f.Source)}</strong>: <code>{E(f.Best.Name)}</code> " +
                $"{StudyFormat.Score(f.Best.HeldInNormalized)} held-in normalised, {StudyFormat.Score(f.Best.HeldOut)} held-out at {StudyFormat.Flops(f.Best.RelativeFlops)}×")));
            h.Append(".</p>");
        }
        h.Append("</section>");

        h.Append($"<section><h2>Score per task ({E(r.Split)} split)</h2>").Append(Heatmap(r)).Append("</section>");

        h.Append("<section><h2>Findings</h2><ul id=\"findings\">");
        foreach (var f in Findings.Compute(r))
        {
            string status = f.Status switch
            {
                FindingStatus.Holds => "holds", FindingStatus.DoesNotHold => "does not hold", FindingStatus.WithinNoise => "within noise", _ => "not tested",
            };
            h.Append($"<li><strong>{E(f.Claim)}</strong> — {status}: {E(f.Evidence)}.</li>");
        }
        h.Append("</ul></section>");
        h.Append("<div id=\"tip\" role=\"tooltip\"></div>");
        h.Append($"<script>//<![CDATA[\n{Script}\n//]]></script></body></html>\n");
        return h.ToString();
    }

    /// <summary>Strategies down, tasks across, the experts' own scores first; cells coloured by score on viridis (0 to 1).</summary>
    static string Heatmap(StudyResults r)
    {
        var h = new StringBuilder("<div class=\"scroll\"><table id=\"heatmap\" class=\"heatmap\"><thead><tr><th>strategy</th>");
        foreach (var t in r.Tasks) h.Append($"<th class=\"task\"><span>{E(t.Name)}{(t.HeldOut ? " (held out)" : "")}</span></th>");
        h.Append("</tr></thead><tbody>");
        void Row(string name, Func<StudyTask, double?> score)
        {
            h.Append($"<tr><th>{name}</th>");
            foreach (var t in r.Tasks)
                h.Append(score(t) is double v
                    ? $"<td style=\"background:{Viridis(v)};color:{(v > 0.6 ? "#000000" : "#ffffff")}\" title=\"{E(t.Name)}: {StudyFormat.Score(v)}\">{v.ToString("0.00", System.Globalization.CultureInfo.InvariantCulture)}</td>"
                    : "<td class=\"none\">—</td>");
            h.Append("</tr>");
        }
        Row("<em>expert on own task</em>", t => r.ExpertScores.TryGetValue(t.Name, out var e) ? e : null);
        foreach (var s in r.Strategies) Row($"<code>{E(s.Name)}</code>", t => s.PerTask.TryGetValue(t.Name, out var v) ? v : null);
        return h.Append("</tbody></table></div>").ToString();
    }

    static readonly string[] ViridisStops =
        ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725"];

    /// <summary>Viridis at <paramref name="v"/> in [0, 1], interpolated linearly between ten stops.</summary>
    public static string Viridis(double v)
    {
        double at = Math.Clamp(v, 0, 1) * (ViridisStops.Length - 1);
        int i = Math.Min((int)at, ViridisStops.Length - 2);
        double f = at - i;
        int C(int stop, int channel) => Convert.ToInt32(ViridisStops[stop].Substring(1 + 2 * channel, 2), 16);
        return "#" + string.Concat(Enumerable.Range(0, 3).Select(c => ((int)Math.Round(C(i, c) + f * (C(i + 1, c) - C(i, c)))).ToString("x2")));
    }

    static string Legend() =>
        "<ul class=\"legend\">" + string.Concat(Strategies.StrategyFamily.All.Select(f =>
            $"<li><span class=\"swatch\" style=\"background:{SvgFrontier.Colour(f)}\"></span>{E(f)}</li>")) +
        "<li><span class=\"dash\"></span>Pareto frontier (deployable)</li></ul>";

    static string Tip(StrategyResult s, StrategyExtras e)
    {
        var lines = new List<string> { s.Name + (s.Deployable ? "" : " (not deployable)"), $"{s.Family}{(s.Variant is null ? "" : " · " + s.Variant)}",
            $"held-in normalised {Plain(s.HeldInNormalized, e.HeldIn)}" };
        if (e.GapClosed is double g) lines.Add($"gap closed {Plain(g, e.GapClosedInterval)}");
        lines.Add($"held-out {Plain(s.HeldOut, e.HeldOut)}");
        lines.Add($"{StudyFormat.Flops(s.RelativeFlops)}× base FLOPs");
        if (e.FeatureSource is { } f) lines.Add($"router features: {f}");
        return string.Join("\n", lines);
    }

    static string Plain(double? v, ScoreInterval? i) =>
        StudyFormat.Score(v) + (v is not null && i is { } iv ? $" [{StudyFormat.Score(iv.Lo)}, {StudyFormat.Score(iv.Hi)}]" : "");

    static string Score(double? v, ScoreInterval? i) =>
        v is null ? "—" : StudyFormat.Score(v) + (i is { } iv ? $" <span class=\"ci\">[{StudyFormat.Score(iv.Lo)}, {StudyFormat.Score(iv.Hi)}]</span>" : "");

    /// <summary>The bootstrap's scalar settings, e.g. " (resamples 1000, seed 0)".</summary>
    static string Bootstrap(JsonObject? b)
    {
        if (b is null) return "";
        var parts = b.Where(kv => kv.Value is JsonValue).Select(kv => $"{E(kv.Key.Replace('_', ' '))} {E(kv.Value!.ToJsonString().Trim('"'))}").ToList();
        return parts.Count == 0 ? "" : $" ({string.Join(", ", parts)})";
    }

    static string E(string s) => WebUtility.HtmlEncode(s);

    // No '<' or '&' below: the style element is plain text in HTML and in XML alike.
    const string Css =
        "body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1180px;padding:0 16px;color:#1a1a1a;background:#ffffff}" +
        "h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #dddddd}" +
        "table{border-collapse:collapse;font-size:0.88em;margin:8px 0}th,td{border:1px solid #dddddd;padding:3px 7px;text-align:left}" +
        "td{font-variant-numeric:tabular-nums}td code{white-space:nowrap}.ci{color:#666666;font-size:0.9em;white-space:nowrap}.scroll{overflow-x:auto}" +
        ".heatmap td{text-align:center;min-width:44px}.heatmap td.none{background:#eeeeee;color:#888888}" +
        ".heatmap th.task{vertical-align:bottom;height:150px;white-space:nowrap}.heatmap th.task span{writing-mode:vertical-rl;transform:rotate(180deg)}" +
        "figure{margin:8px 0}figcaption{color:#555555;font-size:0.9em}.chart{max-width:100%;height:auto;display:block}" +
        ".chart .area{fill:#ffffff;stroke:#999999}.chart .grid{stroke:#e5e5e5}.chart .tick{font-size:11px;fill:#444444}" +
        ".chart .axis{font-size:13px;fill:#222222}.chart .frontier{fill:none;stroke:#000000;stroke-width:1.5;stroke-dasharray:6 4}" +
        ".chart .err{stroke-width:1.5;fill:none;opacity:0.8}.chart .ring{fill:none;stroke:#000000;stroke-width:1.5}" +
        ".chart .pt{cursor:pointer}.chart .pt:hover circle,.chart .pt:focus circle{stroke:#000000;stroke-width:2}" +
        ".legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:14px;font-size:0.9em}.legend li{display:flex;align-items:center;gap:5px}" +
        ".swatch{display:inline-block;width:12px;height:12px;border-radius:6px}.dash{display:inline-block;width:24px;border-top:2px dashed #000000}" +
        "#tip{position:absolute;display:none;pointer-events:none;background:#222222;color:#ffffff;padding:6px 9px;border-radius:4px;" +
        "font-size:12px;white-space:pre-line;max-width:360px;box-shadow:0 2px 6px rgba(0,0,0,0.3)}";

    // The hover labels: a point's data-tip shown next to the pointer (or under a point focused by keyboard).
    const string Script = """
        (function () {
          var tip = document.getElementById('tip');
          function show(g, x, y) { tip.textContent = g.getAttribute('data-tip'); tip.style.left = (x + 14) + 'px'; tip.style.top = (y + 14) + 'px'; tip.style.display = 'block'; }
          function hide() { tip.style.display = 'none'; }
          document.querySelectorAll('.chart .pt').forEach(function (g) {
            var title = g.querySelector('title'); if (title) title.remove();
            g.addEventListener('mousemove', function (e) { show(g, e.pageX, e.pageY); });
            g.addEventListener('mouseleave', hide);
            g.addEventListener('focus', function () { var b = g.getBoundingClientRect(); show(g, b.right + window.scrollX, b.top + window.scrollY); });
            g.addEventListener('blur', hide);
          });
        })();
        """;
}
