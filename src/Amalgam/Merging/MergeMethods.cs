namespace Amalgam.Merging;

/// <summary>The registry of merge methods by mergekit name.</summary>
public static class MergeMethods
{
    private static readonly Dictionary<string, IMergeMethod> registry = new(StringComparer.Ordinal);

    /// <summary>Every registered method, by name.</summary>
    public static IReadOnlyDictionary<string, IMergeMethod> All
    {
        get
        {
            EnsureRegistered();
            return registry;
        }
    }

    public static IMergeMethod Get(string name) =>
        All.TryGetValue(name, out var m) ? m
        : MethodCatalog.Refused.TryGetValue(name, out var why) ? throw new InvalidDataException($"merge_method: {why}")
        : throw new InvalidDataException($"merge_method: unknown method '{name}'; known: {string.Join(", ", All.Keys.Order())}");

    static void EnsureRegistered()
    {
        lock (registry)
        {
            if (registry.Count > 0) return;
            foreach (var m in MethodCatalog.Create()) registry[m.Name] = m;
        }
    }
}
