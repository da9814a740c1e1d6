using System.Text.Json;
using Amalgam.Ensembling;
using Amalgam.Experts;
using Amalgam.Models;
using Amalgam.Routing;
using Amalgam.Serving;
using Amalgam.Serving.Engine;
using Amalgam.Strategies;
using Amalgam.Strategies.Saved;
using Amalgam.Tokenizers;

namespace Amalgam.Tests.Serving;

/// <summary>
/// Tiny saved strategies over three of the suite's experts (routers trained in a few steps on the experts' own
/// prompts, an ensemble, a folded merge, Twin-Merging, Arrow), saved with <see cref="StrategyFolder.Save"/> in a
/// scratch folder, and one server on loopback serving all but Arrow next to the suite's base and its experts.
/// </summary>
public sealed class ServingStrategyFixture : IAsyncLifetime
{
    public static readonly string[] Experts = ["reverse_word", "uppercase", "capitalize"];

    /// <summary>Served strategies: name → kind.</summary>
    public static readonly (string Name, string Kind)[] Strategies =
    [
        ("router-top1", "router"), ("router-top2-params", "router"), ("router-top2-outputs", "router"),
        ("router-subset", "router"), ("ensemble", "ensemble"), ("merged", "merged-model"), ("twin", "twin-merging"),
    ];

    public readonly TestData.TempDir Dir = new();
    public AmalgamServer Server { get; private set; } = null!;
    public ITextTokenizer Tokenizer { get; } = TokenizerLoader.Load(ServingFixture.BaseDir);

    public string StrategyDir(string name) => Dir[name];

    /// <summary>Test prompts of the three experts' tasks (the second of each, so not the routers' training prompts).</summary>
    public static IReadOnlyList<string> Prompts { get; } = Experts.Select(t => Prompt(t, 1)).ToList();

    public static string Prompt(string task, int index)
    {
        var line = File.ReadLines(Path.Combine(ServingFixture.Suite, "data", task, "train.jsonl")).ElementAt(index);
        return JsonDocument.Parse(line).RootElement.GetProperty("input").GetString() + "\nAnswer: ";
    }

    public Task InitializeAsync()
    {
        using (var pool = ExpertPool.Load(ServingFixture.BaseDir, Experts.Select(e => (e, ServingFixture.ExpertDir(e))).ToList()))
        {
            // The routers learn from 4 training prompts per task, labelled with their task's expert.
            var train = Experts.SelectMany((t, k) => Enumerable.Range(10, 4).Select(i => (Prompt: Ids(Prompt(t, i)), Label: k))).ToList();
            using var features = PromptFeatures.MeanPooled(pool.Model, train.Select(x => x.Prompt).ToList(), pool.PadId);
            var labels = train.Select(x => x.Label).ToList();
            using var learned = LearnedRouter.Train(features, labels, pool.Names, new LearnedRouterOptions { Steps = 40 }, seed: 1).Router;
            using var centroid = CentroidRouter.Build(features, labels, pool.Names);
            Save(new RouterStrategy(learned, 1, RouteAggregation.Parameters, ownsRouter: false), pool, "router-top1");
            Save(new RouterStrategy(learned, 2, RouteAggregation.Parameters, ownsRouter: false), pool, "router-top2-params");
            Save(new RouterStrategy(centroid, 2, RouteAggregation.Outputs, ownsRouter: false), pool, "router-top2-outputs");
            Save(new RouterStrategy(learned, 1, RouteAggregation.Parameters, allowed: [0, 2], ownsRouter: false), pool, "router-subset");
            Save(new EnsembleStrategy([0.5, 0.3, 0.2], EnsembleAggregation.Probabilities), pool, "ensemble");
            Save(new ArrowStrategy(1, 1.0), pool, "arrow");

            var merged = CheckpointLoader.Load(pool.BasePath);
            foreach (var e in pool.Experts.Take(2)) foreach (var (module, delta) in e.Deltas) merged.Linears[module].Fold(delta with { Scale = delta.Scale * 0.5 });
            Save(new MergedModelStrategy(merged, "merge_method: linear\n"), pool, "merged");

            var shared = CheckpointLoader.Load(pool.BasePath);
            foreach (var e in pool.Experts) foreach (var (module, delta) in e.Deltas) shared.Linears[module].Fold(delta with { Scale = delta.Scale / 3 });
            var exclusive = pool.ExpertPaths.Select((p, k) => LoraAdapter.Load(p, shared, pool.Names[k])).ToList();
            using var twinFeatures = PromptFeatures.MeanPooled(shared, train.Select(x => x.Prompt).ToList(), pool.PadId);
            var twinRouter = LearnedRouter.Train(twinFeatures, labels, pool.Names, new LearnedRouterOptions { Steps = 40 }, seed: 2).Router;
            Save(new TwinMergingStrategy(shared, exclusive, twinRouter, groupWise: false), pool, "twin");
        }
        return StartServer();
    }

    async Task StartServer()
    {
        Server = await AmalgamServer.StartAsync(new ServeOptions(ServingFixture.BaseDir)
        {
            Adapters = Experts.Select(e => (e, ServingFixture.ExpertDir(e))).ToList(),
            Strategies = Strategies.Select(s => (s.Name, StrategyDir(s.Name))).ToList(),
            Port = 0,
            ServedModelName = "base",
            Engine = new EngineOptions(MaxBatch: 32, MaxQueue: 64),
            ChatRenderer = ServingFixture.RenderChat,
        });
    }

    void Save(DeployableStrategy s, ExpertPool pool, string name)
    {
        using (s)
        {
            s.Name = name;
            s.Family = "test";
            StrategyFolder.Save(s, pool, Dir[name]);
        }
    }

    IReadOnlyList<long> Ids(string prompt) => Tokenizer.Encode(prompt, addBos: true).Select(i => (long)i).ToList();

    /// <summary>What `amalgam generate --strategy DIR --prompt P` answers, computed in-process the same way (the folder loaded alone).</summary>
    public string Generate(string strategy, string prompt, int maxNewTokens)
    {
        using var loaded = StrategyFolder.Load(StrategyDir(strategy));
        var pool = loaded.Pool;
        var ids = pool.Tokenizer.Encode(prompt, addBos: true).Select(i => (long)i).ToList();
        var answer = loaded.Predictor.Generate([ids], maxNewTokens, GenerationDefaults.StopTokens(pool.Tokenizer, pool.Model.Config), pool.PadId)[0];
        return pool.Tokenizer.Decode(answer.Select(i => (int)i));
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        Dir.Dispose();
    }
}
