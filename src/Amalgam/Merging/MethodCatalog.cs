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
    ];
}
