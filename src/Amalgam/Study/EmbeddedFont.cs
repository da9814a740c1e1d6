using ScottPlot;
using SkiaSharp;

namespace Amalgam.Study;

/// <summary>
/// DejaVu Sans, embedded in the assembly and handed to ScottPlot by name. SkiaSharp's self-contained Linux build
/// finds fonts only by scanning /usr/share/fonts, so on a bare machine every label would silently vanish; with
/// the embedded font the figures are the same on every machine.
/// </summary>
internal sealed class EmbeddedFont : IFontResolver
{
    public const string Name = "Amalgam DejaVu Sans";
    const string Resource = "Amalgam.Study.Fonts.DejaVuSans.ttf";

    static readonly Lazy<SKData> data = new(() =>
    {
        using var stream = typeof(EmbeddedFont).Assembly.GetManifestResourceStream(Resource)
            ?? throw new InvalidOperationException($"embedded resource {Resource} is missing from the assembly");
        return SKData.Create(stream);
    });

    static readonly Lazy<bool> registered = new(() =>
    {
        Fonts.FontResolvers.Add(new EmbeddedFont());
        return true;
    });

    /// <summary>Registers the resolver with ScottPlot once per process; returns the font name to use.</summary>
    public static string Register()
    {
        _ = registered.Value;
        return Name;
    }

    // A fresh typeface per request: ScottPlot may dispose what it is given.
    public SKTypeface? CreateTypeface(string fontName, FontWeight weight, FontSlant slant, FontSpacing spacing) =>
        fontName == Name ? SKTypeface.FromData(data.Value) : null;

    public SKTypeface? CreateTypeface(string fontName, bool bold, bool italic) =>
        fontName == Name ? SKTypeface.FromData(data.Value) : null;
}
