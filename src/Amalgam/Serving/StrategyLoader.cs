using System.Text.Json.Nodes;
using Amalgam.Experts;
using Amalgam.Models;
using Amalgam.Serving.Engine;
using Amalgam.Strategies.Saved;

namespace Amalgam.Serving;

/// <summary>
/// Turns a saved strategy folder (<see cref="StrategyFolder"/>) into what the server needs: routers and ensembles
/// add their experts to the base engine's adapters (as <c>NAME/expert</c>); a folded merge and Twin-Merging get an
/// engine of their own on their own base weights. The strategy must have been fitted on the served base.
/// </summary>
public static class StrategyLoader
{
    /// <param name="adapters">the base engine's adapters, to which a router's or an ensemble's experts are added</param>
    /// <param name="parts">where what the server must dispose at the end is added (the loaded strategy, its engine's model)</param>
    /// <returns>the served model, made once the base engine exists; the strategy's own engine, if it has one</returns>
    public static (Func<ServingEngine, IServedModel> Make, ServingEngine? Own) Load(string name, string dir, string modelDir, CausalLM model,
        Dictionary<string, LoraAdapter> adapters, List<IDisposable> parts, IReadOnlyCollection<long> stopTokens, long padId,
        EngineOptions options, ServingMetrics metrics)
    {
        LoadedStrategy loaded;
        try { loaded = StrategyFolder.Load(dir); }
        catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException)
        {
            throw new InvalidDataException($"--strategy {name}: {e.Message}", e);
        }
        parts.Add(loaded);
        CheckSameBase(name, modelDir, loaded.Pool.BasePath);
        switch (loaded.Strategy)
        {
            case RouterStrategy or EnsembleStrategy:
                for (int k = 0; k < loaded.Pool.Count; k++)
                {
                    string engineName = StrategyServedModels.ExpertName(name, loaded.Pool.Names[k]);
                    if (adapters.ContainsKey(engineName)) throw new ArgumentException($"--strategy: '{engineName}' is also an --adapter's name");
                    adapters[engineName] = LoraAdapter.Load(loaded.Pool.ExpertPaths[k], model, engineName);
                }
                return (loaded.Strategy is RouterStrategy ? _ => new StrategyServedModels.Router(name, loaded) : _ => new StrategyServedModels.Ensemble(name, loaded), null);
            case MergedModelStrategy merged:
            {
                var own = new ServingEngine(merged.Model, new Dictionary<string, LoraAdapter>(), stopTokens, padId, options, metrics, reportsGauges: false);
                return (_ => new StrategyServedModels.FoldedMerge(name, own), own);
            }
            case TwinMergingStrategy:
            {
                // The loaded strategy's shared model carries its own expert library; the engine installs one of its
                // own, so it runs on a second copy of the shared model with the exclusive parts loaded onto it.
                var (sharedDir, exclusive) = TwinFiles(dir);
                var shared = CheckpointLoader.Load(sharedDir);
                parts.Add(shared);
                var parts2 = new Dictionary<string, LoraAdapter>(StringComparer.Ordinal);
                foreach (var (expert, path) in exclusive)
                {
                    string engineName = StrategyServedModels.ExpertName(name, expert);
                    parts2[engineName] = LoraAdapter.Load(path, shared, engineName);
                }
                var own = new ServingEngine(shared, parts2, stopTokens, padId, options, metrics, reportsGauges: false);
                return (_ => new StrategyServedModels.TwinMerging(name, loaded, own), own);
            }
            default:
                throw new NotSupportedException($"--strategy {name}: {dir}: kind '{loaded.Strategy.Kind}' routes per token and module (Arrow reads every layer's input), which per-row weights in the shared batch cannot express; answer with amalgam generate --strategy");
        }
    }

    static void CheckSameBase(string name, string modelDir, string strategyBase)
    {
        static string Full(string p) => Path.TrimEndingDirectorySeparator(Path.GetFullPath(p));
        if (Full(modelDir) == Full(strategyBase)) return;
        if (ContentHash.Of(modelDir) != ContentHash.Of(strategyBase))
            throw new ArgumentException($"--strategy {name}: it was fitted on the base {strategyBase}, which differs from --model {modelDir}");
    }

    // The shared checkpoint and the exclusive parts' folders, as strategy.json names them (StrategyFolder.Load checked them).
    static (string Shared, List<(string Name, string Path)> Exclusive) TwinFiles(string dir)
    {
        var p = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, StrategyFolder.FileName)))!["parameters"]!;
        var exclusive = p["exclusive"]!.AsArray().Select(e => (e!["name"]!.GetValue<string>(), Path.Combine(dir, e["path"]!.GetValue<string>()))).ToList();
        return (Path.Combine(dir, p["shared"]!.GetValue<string>()), exclusive);
    }
}
