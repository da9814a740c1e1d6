using System.Text.Json.Nodes;
using Amalgam.Merging.Execution;
using Amalgam.Models;
using Amalgam.Predictors;

namespace Amalgam.Strategies.Saved;

/// <summary>
/// A merge folded into one model (any merge method, fitted coefficients, a greedy soup): served at the base's cost.
/// Saved as a full checkpoint in <c>model/</c> (with the base's tokenizer files, so it also runs as a plain model)
/// and the recipe that made it.
/// </summary>
public sealed class MergedModelStrategy(CausalLM model, string? recipe) : DeployableStrategy
{
    public const string ModelFolder = "model";

    public override string Kind => StrategyKinds.MergedModel;
    public override bool UsesExperts => false;
    public CausalLM Model => model;
    /// <summary>The mergekit-style recipe that made the model, if known.</summary>
    public string? Recipe => recipe;

    public override IPredictor Predictor(ExpertPool pool) => new ModelPredictor(model);

    public override JsonObject Save(string dir, ExpertPool pool)
    {
        CheckpointWriter.Save(model, Path.Combine(dir, ModelFolder), staging => OutputFolderFiles.CopyTokenizer(pool.BasePath, staging));
        if (recipe is not null) File.WriteAllText(Path.Combine(dir, "recipe.yaml"), recipe);
        return new JsonObject { ["model"] = ModelFolder, ["recipe"] = recipe is null ? null : "recipe.yaml" };
    }

    public static MergedModelStrategy Load(string dir, SavedParameters p, ExpertPool pool)
    {
        string folder = Path.Combine(dir, p.String("model"));
        var recipeFile = p.Optional("recipe") is JsonValue v && v.TryGetValue<string>(out var r) ? Path.Combine(dir, r) : null;
        return new MergedModelStrategy(CheckpointLoader.Load(folder, device: pool.Model.parameters().First().device),
            recipeFile is not null && File.Exists(recipeFile) ? File.ReadAllText(recipeFile) : null);
    }

    public override void Dispose() => model.Dispose();
}
