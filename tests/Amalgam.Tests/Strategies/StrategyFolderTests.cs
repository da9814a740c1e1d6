using System.Text.Json.Nodes;
using Amalgam.Ensembling;
using Amalgam.Experts;
using Amalgam.Models;
using Amalgam.Predictors;
using Amalgam.Routing;
using Amalgam.Strategies;
using Amalgam.Strategies.Saved;
using static TorchSharp.torch;

namespace Amalgam.Tests.Strategies;

/// <summary>
/// Strategy folders on tiny golden checkpoints: every kind saved, loaded again without any suite, and answering
/// exactly as before it was saved; tampered experts, unknown versions and damaged files refused in one line.
/// </summary>
public class StrategyFolderTests
{
    static readonly long[][] Prompts = [[3, 17, 42, 9, 5], [3, 8], [3, 60, 61, 11, 12, 13, 4]];

    sealed class Fixture : IDisposable
    {
        public readonly TestData.TempDir Dir = new();
        public readonly ExpertPool Pool;
        public Fixture()
        {
            var basePath = TestData.CopyOf("llama_gqa", Dir);
            var qv = TestData.CopyOf("llama_gqa.lora_qv", Dir);
            var all = TestData.CopyOf("llama_gqa.lora_all", Dir);
            Pool = ExpertPool.Load(basePath, [("qv", qv), ("all", all)]);
        }

        public Tensor Features(IReadOnlyList<IReadOnlyList<long>> prompts) => PromptFeatures.MeanPooled(Pool.Model, prompts, Pool.PadId);

        public void Dispose()
        {
            Pool.Dispose();
            Dir.Dispose();
        }
    }

    static (IReadOnlyList<IReadOnlyList<long>> Answers, IReadOnlyList<double> LogLikelihoods) Answer(IPredictor p)
    {
        var prompts = Prompts.Select(x => (IReadOnlyList<long>)x).ToList();
        var sequences = Prompts.Select(x => new TokenSequence([.. x, 20, 21, 22], x.Length)).ToList();
        return (p.Generate(prompts, 5, [], 0), p.LogLikelihoods(sequences, 0));
    }

    static void AssertSameAfterReload(Fixture f, DeployableStrategy strategy, string name)
    {
        strategy.Name = name;
        strategy.Family = "test";
        var before = Answer(strategy.Predictor(f.Pool));
        string dir = f.Dir[name];
        StrategyFolder.Save(strategy, f.Pool, dir, new JsonObject { ["note"] = "for the record" });
        using var loaded = StrategyFolder.Load(dir);
        Assert.Equal(strategy.Kind, loaded.Strategy.Kind);
        Assert.Equal(name, loaded.Strategy.Name);
        var after = Answer(loaded.Predictor);
        Assert.Equal(before.Answers, after.Answers);
        Assert.Equal(before.LogLikelihoods, after.LogLikelihoods); // bit for bit
    }

    [Fact]
    public void Every_kind_answers_exactly_as_before_after_a_save_and_a_load()
    {
        using var f = new Fixture();
        using var features = f.Features(Prompts.Select(x => (IReadOnlyList<long>)x).Concat([[3, 5, 7], [3, 9, 9, 9]]).ToList());
        int[] labels = [0, 1, 0, 1, 1];
        var centroid = CentroidRouter.Build(features, labels, f.Pool.Names);
        var learned = LearnedRouter.Train(features, labels, f.Pool.Names, new LearnedRouterOptions { Steps = 30 }, seed: 1).Router;

        using (var s = new EnsembleStrategy([0.3, 0.7], EnsembleAggregation.LogProbabilities)) AssertSameAfterReload(f, s, "ensemble");
        using (var s = new RouterStrategy(centroid, 2, RouteAggregation.Outputs, ownsRouter: false)) AssertSameAfterReload(f, s, "router-top2-outputs");
        using (var s = new RouterStrategy(learned, 2, RouteAggregation.Parameters, ownsRouter: false)) AssertSameAfterReload(f, s, "router-top2-params");
        using (var s = new RouterStrategy(learned, 1, RouteAggregation.Parameters, allowed: [1], ownsRouter: false)) AssertSameAfterReload(f, s, "router-subset");
        using (var s = new RouterStrategy(centroid, 1, RouteAggregation.Parameters, clusters: [0, 0], ownsRouter: false)) AssertSameAfterReload(f, s, "router-clusters");
        using (var s = new ArrowStrategy(1, 1.0)) AssertSameAfterReload(f, s, "arrow");

        var merged = CheckpointLoader.Load(f.Pool.BasePath);
        f.Pool.Experts[0].FoldInto(merged);
        using (var s = new MergedModelStrategy(merged, "merge_method: linear\n")) AssertSameAfterReload(f, s, "merged");

        var shared = CheckpointLoader.Load(f.Pool.BasePath);
        f.Pool.Experts[1].FoldInto(shared);
        var exclusive = f.Pool.ExpertPaths.Select((p, k) => LoraAdapter.Load(p, shared, f.Pool.Names[k])).ToList();
        using (var s = new TwinMergingStrategy(shared, exclusive, LearnedRouter.Train(features, labels, f.Pool.Names, new LearnedRouterOptions { Steps = 30 }, seed: 2).Router, groupWise: true))
            AssertSameAfterReload(f, s, "twin");
        centroid.Dispose();
        learned.Dispose();
    }

    [Fact]
    public void A_router_on_cheaper_features_keeps_its_source_through_a_save_and_a_load()
    {
        using var f = new Fixture();
        var prompts = Prompts.Select(x => (IReadOnlyList<long>)x).Concat([[3, 5, 7], [3, 9, 9, 9]]).ToList();
        using var features = PromptFeatures.MeanPooled(f.Pool.Model, prompts, f.Pool.PadId, source: FeatureSource.Embeddings);
        using var learned = LearnedRouter.Train(features, [0, 1, 0, 1, 1], f.Pool.Names, new LearnedRouterOptions { Steps = 30 }, seed: 1).Router;
        using (var s = new RouterStrategy(learned, 1, RouteAggregation.Parameters, ownsRouter: false, features: FeatureSource.Embeddings))
            AssertSameAfterReload(f, s, "router-embeddings");
        string dir = f.Dir["router-embeddings"], file = Path.Combine(dir, StrategyFolder.FileName);
        var json = JsonNode.Parse(File.ReadAllText(file))!;
        Assert.Equal("embeddings", (string?)json["parameters"]!["features"]);
        using (var loaded = StrategyFolder.Load(dir))
            Assert.Equal(FeatureSource.Embeddings, Assert.IsType<RouterStrategy>(loaded.Strategy).Features);
        // A full-pass router writes no "features" (folders from before feature sources load as they did).
        using (var s = new RouterStrategy(learned, 1, RouteAggregation.Parameters, ownsRouter: false) { Name = "full", Family = "route" })
            StrategyFolder.Save(s, f.Pool, f.Dir["full"]);
        Assert.Null(JsonNode.Parse(File.ReadAllText(Path.Combine(f.Dir["full"], StrategyFolder.FileName)))!["parameters"]!["features"]);

        json["parameters"]!["features"] = "layer-9";   // the llama_gqa base has 2 layers
        File.WriteAllText(file, json.ToJsonString());
        string error = LoadError(dir);
        Assert.Contains("parameters.features", error);
        Assert.Contains("only 2 layers", error);
    }

    [Fact]
    public void A_folded_merge_loads_its_own_checkpoint_only_not_the_base_beside_it()
    {
        using var f = new Fixture();
        var merged = CheckpointLoader.Load(f.Pool.BasePath);
        f.Pool.Experts[0].FoldInto(merged);
        using var expected = merged.parameters().First().detach().clone();
        using (var s = new MergedModelStrategy(merged, null) { Name = "m", Family = "merge" }) StrategyFolder.Save(s, f.Pool, f.Dir["m"]);
        using var loaded = StrategyFolder.Load(f.Dir["m"]);
        var strategy = Assert.IsType<MergedModelStrategy>(loaded.Strategy);
        Assert.Same(loaded.Pool.Model, strategy.Model);                 // one model in memory: the merge
        Assert.Equal(Path.GetFullPath(f.Pool.BasePath), Path.GetFullPath(loaded.Pool.BasePath)); // provenance kept
        Assert.True(expected.allclose(strategy.Model.parameters().First(), rtol: 0, atol: 0));
    }

    static string SavedEnsemble(Fixture f)
    {
        using var s = new EnsembleStrategy([0.5, 0.5], EnsembleAggregation.Probabilities) { Name = "e", Family = "ensemble" };
        string dir = f.Dir["saved"];
        StrategyFolder.Save(s, f.Pool, dir);
        return dir;
    }

    static string LoadError(string dir) => Assert.ThrowsAny<Exception>(() => StrategyFolder.Load(dir).Dispose()).Message;

    [Fact]
    public void A_changed_expert_is_refused_naming_the_field()
    {
        using var f = new Fixture();
        string dir = SavedEnsemble(f);
        var file = Path.Combine(f.Pool.ExpertPaths[1], LoraAdapter.WeightsFile);
        var bytes = File.ReadAllBytes(file);
        bytes[^1] ^= 1;
        File.WriteAllBytes(file, bytes);
        string message = LoadError(dir);
        Assert.StartsWith(Path.Combine(dir, StrategyFolder.FileName) + ": experts[1].sha256: ", message);
        Assert.Contains("changed since the strategy was saved", message);
        Assert.DoesNotContain('\n', message);
    }

    [Fact]
    public void An_unknown_format_version_or_kind_is_refused()
    {
        using var f = new Fixture();
        string dir = SavedEnsemble(f);
        string file = Path.Combine(dir, StrategyFolder.FileName);
        var root = JsonNode.Parse(File.ReadAllText(file))!.AsObject();
        root["format_version"] = 2;
        File.WriteAllText(file, root.ToJsonString());
        Assert.Equal($"{file}: format_version: 2 is not supported (this Amalgam reads 1)", LoadError(dir));
        root["format_version"] = 1;
        root["kind"] = "telepathy";
        File.WriteAllText(file, root.ToJsonString());
        Assert.StartsWith($"{file}: kind: 'telepathy' is not one of", LoadError(dir));
        root["kind"] = "ensemble";
        root["parameters"]!["weights"]!["qv"] = "heavy";
        File.WriteAllText(file, root.ToJsonString());
        Assert.Equal($"{file}: parameters.weights.qv: expected a finite number", LoadError(dir));
    }

    [Fact]
    public void A_damaged_router_file_is_refused_naming_it()
    {
        using var f = new Fixture();
        using var features = f.Features(Prompts.Select(x => (IReadOnlyList<long>)x).ToList());
        using var router = CentroidRouter.Build(features, [0, 1, 1], f.Pool.Names);
        using var s = new RouterStrategy(router, 1, RouteAggregation.Parameters, ownsRouter: false) { Name = "r", Family = "route" };
        string dir = f.Dir["router"];
        StrategyFolder.Save(s, f.Pool, dir);
        string tensors = Path.Combine(dir, RouterStrategy.RouterFolder, RouterFiles.TensorsFile);
        File.WriteAllBytes(tensors, File.ReadAllBytes(tensors)[..20]);
        Assert.Contains(RouterFiles.TensorsFile + ": header length", LoadError(dir)); // the safetensors reader names the file
    }

    [Fact]
    public void Saving_over_an_existing_folder_replaces_it_whole()
    {
        using var f = new Fixture();
        string dir = SavedEnsemble(f);
        File.WriteAllText(Path.Combine(dir, "stale.txt"), "left from before");
        SavedEnsemble(f);
        Assert.False(File.Exists(Path.Combine(dir, "stale.txt")));
        Assert.Empty(Directory.GetDirectories(f.Dir.Path, ".saved*"));
    }
}
