using System.Text.Json.Nodes;
using Amalgam.Experts;
using Amalgam.Mixing;
using Amalgam.Models;
using Amalgam.Predictors;
using Amalgam.Routing;
using static TorchSharp.torch;

namespace Amalgam.Strategies.Saved;

/// <summary>
/// Twin-Merging as deployed: the shared merged model (folded), the experts' exclusive parts as LoRA adapters mixed
/// per example by a learned router on the shared model's prompt states, or group-wise (one merge per group of
/// inputs with the same top expert, weighted by the group's mean probabilities). Saved as <c>shared/</c> (a
/// checkpoint), <c>exclusive/NN-name/</c> (PEFT adapters) and <c>router/</c>; it needs no expert of the pool to answer.
/// </summary>
public sealed class TwinMergingStrategy : DeployableStrategy
{
    public const string SharedFolder = "shared", ExclusiveFolder = "exclusive", RouterFolder = "router";

    private readonly ExpertLibrary library;

    public TwinMergingStrategy(CausalLM shared, IReadOnlyList<LoraAdapter> exclusive, LearnedRouter router, bool groupWise)
    {
        if (!router.Experts.SequenceEqual(exclusive.Select(e => e.Name)))
            throw new ArgumentException($"router experts [{string.Join(", ", router.Experts)}] are not the exclusive parts' [{string.Join(", ", exclusive.Select(e => e.Name))}]");
        Shared = shared;
        Exclusive = exclusive;
        Router = router;
        GroupWise = groupWise;
        library = new ExpertLibrary(shared, exclusive);
    }

    public override string Kind => StrategyKinds.TwinMerging;
    public override bool UsesExperts => false;
    public CausalLM Shared { get; }
    public IReadOnlyList<LoraAdapter> Exclusive { get; }
    public LearnedRouter Router { get; }
    public bool GroupWise { get; }

    public override IPredictor Predictor(ExpertPool pool) => new MixturePredictor(Shared, prompts => Weights(prompts, pool.PadId));

    /// <summary>
    /// The exclusive parts' weights [prompts, K] for a request set: the router's probabilities on the shared model's
    /// prompt states, or (group-wise) each prompt's group's mean probabilities.
    /// </summary>
    public Tensor Weights(IReadOnlyList<IReadOnlyList<long>> prompts, long padId)
    {
        using var scope = NewDisposeScope();
        using var features = PromptFeatures.MeanPooled(Shared, prompts, padId);
        var probs = Router.Probabilities(features);
        if (!GroupWise) return probs.MoveToOuterDisposeScope();
        var group = probs.argmax(-1);
        int k = Exclusive.Count;
        var oneHot = nn.functional.one_hot(group, k).to(ScalarType.Float32);                                    // [N, K]
        var means = oneHot.t().matmul(probs) / oneHot.sum(0, keepdim: false).clamp_min(1).unsqueeze(1);      // [K groups, K]
        return means.index_select(0, group).MoveToOuterDisposeScope();
    }

    public override JsonObject Save(string dir, ExpertPool pool)
    {
        CheckpointWriter.Save(Shared, Path.Combine(dir, SharedFolder));
        var names = new JsonArray();
        for (int i = 0; i < Exclusive.Count; i++)
        {
            string sub = $"{i:D2}-{Exclusive[i].Name}";
            Exclusive[i].Save(Path.Combine(dir, ExclusiveFolder, sub));
            names.Add(new JsonObject { ["name"] = Exclusive[i].Name, ["path"] = $"{ExclusiveFolder}/{sub}" });
        }
        Router.Save(Path.Combine(dir, RouterFolder));
        return new JsonObject { ["shared"] = SharedFolder, ["exclusive"] = names, ["router"] = RouterFolder, ["group_wise"] = GroupWise };
    }

    public static TwinMergingStrategy Load(string dir, SavedParameters p, ExpertPool pool)
    {
        var shared = CheckpointLoader.Load(Path.Combine(dir, p.String("shared")), device: pool.Model.parameters().First().device);
        var exclusive = new List<LoraAdapter>();
        LearnedRouter? router = null;
        try
        {
            if (p.Optional("exclusive") is not JsonArray parts || parts.Count == 0)
                throw new InvalidDataException($"{p.File}: parameters.exclusive: expected a non-empty list of {{name, path}}");
            for (int i = 0; i < parts.Count; i++)
            {
                string? name = parts[i]?["name"]?.GetValue<string>(), path = parts[i]?["path"]?.GetValue<string>();
                if (name is null || path is null) throw new InvalidDataException($"{p.File}: parameters.exclusive[{i}]: needs name and path");
                exclusive.Add(LoraAdapter.Load(Path.Combine(dir, path), shared, name));
            }
            router = LearnedRouter.Load(Path.Combine(dir, p.String("router")));
            return new TwinMergingStrategy(shared, exclusive, router, p.Bool("group_wise"));
        }
        catch
        {
            router?.Dispose();
            foreach (var e in exclusive) e.Dispose();
            shared.Dispose();
            throw;
        }
    }

    public override void Dispose()
    {
        library.Dispose();
        Router.Dispose();
        foreach (var e in Exclusive) e.Dispose();
        Shared.Dispose();
    }
}
