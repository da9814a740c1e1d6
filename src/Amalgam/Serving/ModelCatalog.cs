namespace Amalgam.Serving;

/// <summary>
/// The names clients may put in <c>model</c>: the base, each served adapter, each saved strategy. Read by HTTP
/// handlers, changed by load/unload; thread-safe. Resolution turns a name (and the <c>adapters</c> extension field)
/// into the <see cref="IServedModel"/> that answers.
/// </summary>
public sealed class ModelCatalog
{
    private readonly object gate = new();
    private readonly Dictionary<string, string> adapters = new(StringComparer.Ordinal);      // name → folder
    private readonly Dictionary<string, (IServedModel Model, string Dir)> strategies = new(StringComparer.Ordinal);

    public ModelCatalog(string baseId, string baseDir)
    {
        BaseId = baseId;
        BaseDir = baseDir;
        Base = new BaseServedModel(baseId);
    }

    public string BaseId { get; }
    public string BaseDir { get; }
    public IServedModel Base { get; }

    public void AddAdapter(string name, string dir)
    {
        lock (gate)
        {
            CheckFree(name);
            adapters[name] = dir;
        }
    }

    public bool RemoveAdapter(string name)
    {
        lock (gate) return adapters.Remove(name);
    }

    public bool HasAdapter(string name)
    {
        lock (gate) return adapters.ContainsKey(name);
    }

    public void AddStrategy(IServedModel strategy, string dir)
    {
        lock (gate)
        {
            CheckFree(strategy.Id);
            strategies[strategy.Id] = (strategy, dir);
        }
    }

    void CheckFree(string name)
    {
        if (name == BaseId || adapters.ContainsKey(name) || strategies.ContainsKey(name))
            throw new ArgumentException($"lora_name: the name '{name}' is already served");
    }

    /// <summary>What /v1/models lists: id, kind, folder.</summary>
    public IReadOnlyList<(string Id, string Kind, string Dir)> List()
    {
        lock (gate)
            return [(BaseId, "base", BaseDir), .. adapters.OrderBy(a => a.Key, StringComparer.Ordinal).Select(a => (a.Key, "adapter", a.Value)),
                .. strategies.OrderBy(s => s.Key, StringComparer.Ordinal).Select(s => (s.Key, s.Value.Model.Kind, s.Value.Dir))];
    }

    /// <summary>
    /// The model for a request's <c>model</c> and optional <c>adapters</c> mix ({name: weight}, only with the base).
    /// Throws <see cref="ApiException"/> naming the field.
    /// </summary>
    public IServedModel Resolve(string model, IReadOnlyDictionary<string, double>? mix)
    {
        lock (gate)
        {
            if (mix is not null)
            {
                if (model != BaseId) throw ApiException.BadRequest("adapters", $"a mix of adapters applies to the base model '{BaseId}', not to '{model}'");
                foreach (var (name, weight) in mix)
                {
                    if (!adapters.ContainsKey(name))
                        throw ApiException.BadRequest("adapters", $"unknown adapter '{name}' (served: {string.Join(", ", adapters.Keys.Order(StringComparer.Ordinal))})");
                    if (!double.IsFinite(weight)) throw ApiException.BadRequest($"adapters.{name}", "must be a finite number");
                }
                return mix.Count == 0 ? Base : new FixedMixServedModel(model, "mix", mix);
            }
            if (model == BaseId) return Base;
            if (adapters.ContainsKey(model)) return new FixedMixServedModel(model, "adapter", new Dictionary<string, double> { [model] = 1 });
            if (strategies.TryGetValue(model, out var s)) return s.Model;
            throw new ApiException(404, "model", $"the model '{model}' does not exist", "model_not_found");
        }
    }
}
