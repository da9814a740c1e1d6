namespace Amalgam.Merging;

/// <summary>The list of built-in methods (filled in by the methods' implementation).</summary>
internal static class MethodCatalog
{
    public static IEnumerable<IMergeMethod> Create() => [];
}
