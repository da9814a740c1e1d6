using Amalgam.Merging.Methods;

namespace Amalgam.Merging;

/// <summary>The list of built-in methods.</summary>
internal static class MethodCatalog
{
    public static IEnumerable<IMergeMethod> Create() =>
    [
        new Linear(),
        .. TaskVectorMethod.All(),
        new Slerp(),
        new ModelStock(),
        new TsvMerge(),
        new IsoC(),
        new Passthrough(),
        new NuSlerp(),
        new MultiSlerp(),
        new Karcher(),
        new NearSwap(),
        new Sce(),
        new ArceeFusion(),
        new Ram(),
        new RamPlusTl(),
        new Lrp(),
        new CoreSpace(),
        new Cabs(),
        new EncoderDecoderWeighted(),
    ];

    /// <summary>Names in mergekit's registry that Amalgam refuses, with the reason.</summary>
    public static readonly IReadOnlyDictionary<string, string> Refused = new Dictionary<string, string>(StringComparer.Ordinal)
    {
    };
}
