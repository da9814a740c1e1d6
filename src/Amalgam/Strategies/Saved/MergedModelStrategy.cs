using System.Text.Json.Nodes;
using Amalgam.Merging.Execution;
using Amalgam.Models;
using Amalgam.Predictors;

namespace Amalgam.Strategies.Saved;

/// <summary>
/// A merge folded into one model (any merge method, fitted coefficients, a greedy soup): served at the base's cost.
/// Saved as a full checkpoint in <c>model/</c> (with the base's tokenizer files, so it also runs as a plain model)
/// and the recipe that made it. Loaded again, the model is the pool's own (<see cref="ExpertPool.ModelOnly"/>), which
/// frees it.
/// </summary>
public sealed class MergedModelStrategy(CausalLM model, string? recipe, bool ownsModel = true) : DeployableStrategy
{
    public const string ModelFolder = "model";

    public override string Kind => StrategyKinds.MergedModel;
    public override bool UsesExperts => false;
    public CausalLM Model => model;
    /// <summary>The mergekit-style recipe that made the model, if known.</summary>
    public string? Recipe => recipe;

    public override IPredictor Predictor(ExpertPool pool) => new ModelPredictor(model);

    /// <summary>The recipe (inputs, method, parameters, seed) fixes the merged weights.</summary>
    public override string? AnswersKey => recipe is null ? null : "merged-model\n" + recipe;

    /// <summary>A folded merge runs as the base does: one dense model of the same config and dtype.</summary>
    public override string? ThroughputKey => DenseModelKey(model);

    /// <summary>The throughput key of one dense model: its config and dtype.</summary>
    public static string DenseModelKey(CausalLM m) => $"dense {m.Dtype} {System.Text.Json.JsonSerializer.Serialize(m.Config)}";

    public override JsonObject Save(string dir, ExpertPool pool)
    {
        CheckpointWriter.Save(model, Path.Combine(dir, ModelFolder), staging => OutputFolderFiles.CopyTokenizer(pool.BasePath, staging));
        if (recipe is not null) File.WriteAllText(Path.Combine(dir, "recipe.yaml"), recipe);
        return new JsonObject { ["model"] = ModelFolder, ["recipe"] = recipe is null ? null : "recipe.yaml" };
    }

    /// <summary>The saved checkpoint's folder.</summary>
    public static string ModelPath(string dir, SavedParameters p) => Path.Combine(dir, p.String("model"));

    /// <summary>The saved merge on <paramref name="pool"/>, whose model is the saved checkpoint (<see cref="ExpertPool.ModelOnly"/>).</summary>
    public static MergedModelStrategy Load(string dir, SavedParameters p, ExpertPool pool)
    {
        var recipeFile = p.Optional("recipe") is JsonValue v && v.TryGetValue<string>(out var r) ? Path.Combine(dir, r) : null;
        return new MergedModelStrategy(pool.Model, recipeFile is not null && File.Exists(recipeFile) ? File.ReadAllText(recipeFile) : null, ownsModel: false);
    }

    public override void Dispose()
    {
        if (ownsModel) model.Dispose();
    }
}
