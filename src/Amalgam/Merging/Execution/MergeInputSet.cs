using System.Text.Json;
using Amalgam.Experts;
using Amalgam.Merging.Recipes;
using static TorchSharp.torch;

namespace Amalgam.Merging.Execution;

/// <summary>
/// The opened inputs of a recipe: the base checkpoint and one source per listed model (a checkpoint, or a LoRA
/// expert over the base). When the method uses a base model and the base is also listed under <c>models</c>, that
/// entry is the base, not a model (as mergekit's task-vector methods treat it); for methods that ignore the base it
/// stays an ordinary model.
/// </summary>
public sealed class MergeInputSet : IDisposable
{
    private readonly List<IMergeSource> owned = [];

    public MergeInputSet(MergeRecipe recipe)
    {
        Recipe = recipe;
        UsesBase = recipe.Method.BaseModel != BaseModelUse.Unused;
        try
        {
            if (recipe.BaseModel is not null)
            {
                if (!Directory.Exists(recipe.BaseModel)) throw new DirectoryNotFoundException($"{recipe.Source}: base_model: '{recipe.BaseModel}' is not a folder");
                Base = Own(new CheckpointSource(recipe.BaseModel));
            }
            var models = new List<(RecipeModel, IMergeSource)>();
            foreach (var m in recipe.Models)
            {
                if (UsesBase && m.Path == recipe.BaseModel) continue;
                if (!Directory.Exists(m.Path)) throw new DirectoryNotFoundException($"{recipe.Source}: models[{m.Index}].model: '{m.Path}' is not a folder");
                if (File.Exists(Path.Combine(m.Path, LoraAdapter.ConfigFile)))
                {
                    if (Base is null) throw new InvalidDataException($"{recipe.Source}: base_model: missing; models[{m.Index}] is a LoRA adapter, and adapters are merged over the checkpoint they were trained on");
                    models.Add((m, Own(new LoraExpertSource(m.Path, Base, LoraAdapter.Load(m.Path)))));
                }
                else models.Add((m, Own(new CheckpointSource(m.Path))));
            }
            if (models.Count == 0) throw new InvalidDataException($"{recipe.Source}: models: nothing to merge besides the base model");
            Models = models;
            Layers = CountLayers();
            Resolver = new ParameterResolver(recipe, Layers);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public MergeRecipe Recipe { get; }
    public bool UsesBase { get; }
    public CheckpointSource? Base { get; }
    public IReadOnlyList<(RecipeModel Model, IMergeSource Source)> Models { get; } = [];
    public int Layers { get; }
    public ParameterResolver Resolver { get; } = null!;

    public bool AnyLora => Models.Any(m => m.Source is LoraExpertSource);
    public bool AllLora => Models.All(m => m.Source is LoraExpertSource);

    /// <summary>The checkpoint whose key set, config and tokenizer the output follows: the base, else the first model.</summary>
    public IMergeSource Reference => (IMergeSource?)Base ?? Models[0].Source;

    public IReadOnlyList<string> Names => Reference is CheckpointSource c ? c.Names.Order(StringComparer.Ordinal).ToList() : throw new InvalidOperationException();

    T Own<T>(T s) where T : IMergeSource { owned.Add(s); return s; }

    /// <summary><c>num_hidden_layers</c> of the reference config.json, else one more than the highest layer index seen.</summary>
    int CountLayers()
    {
        string config = Path.Combine(Reference.Path, "config.json");
        if (File.Exists(config))
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(config));
            if (doc.RootElement.TryGetProperty("num_hidden_layers", out var n) && n.TryGetInt32(out int layers) && layers > 0) return layers;
        }
        return Names.Select(ParameterResolver.LayerOf).Max() is int max ? max + 1 : 1;
    }

    /// <summary>What the method sees for one key, from tensors already loaded and converted.</summary>
    public MergeTensorInputs Inputs(string name, Tensor? baseTensor, IReadOnlyList<Tensor> models, Generator? random, IWholeModelPass? pass) =>
        new(name, UsesBase ? baseTensor : null, models,
            Models.Select(m => Resolver.ForModel(m.Model, name)).ToList(),
            Resolver.Global(name), random, pass);

    public Generator? RandomFor(string name) => Recipe.Method.IsRandomized ? TensorSeed.Generator(Recipe.RandomSeed, name) : null;

    public void Dispose()
    {
        // LoRA sources first: they borrow the base.
        foreach (var s in owned.AsEnumerable().Reverse()) s.Dispose();
        owned.Clear();
    }
}
