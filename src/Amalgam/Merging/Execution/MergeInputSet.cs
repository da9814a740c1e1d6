using System.Text.Json;
using Amalgam.Experts;
using Amalgam.Merging.Recipes;
using static TorchSharp.torch;

namespace Amalgam.Merging.Execution;

/// <summary>One model's input to one output tensor: which recipe entry, which opened source, and the key read from it.</summary>
public sealed record KeyInput(RecipeModel Model, IMergeSource Source, string Name);

/// <summary>
/// One output tensor of the plan: its name, the depth t its parameters are resolved at, the base's input (when the
/// method uses one) and the models' inputs. Without slices every input is read at the output's own key; with
/// slices, output layer j of a slice reads layer start + (j − offset) of each source.
/// </summary>
public sealed record MergeKey(string Output, double T, KeyInput? Base, IReadOnlyList<KeyInput> Models);

/// <summary>
/// The opened inputs of a plan: the base checkpoint and one source per listed model (a checkpoint, a LoRA expert
/// over the base, or a checkpoint with a LoRA applied). When the method uses a base model and the base is also
/// listed under <c>models</c>, that entry is the base, not a model (as mergekit's task-vector methods treat it);
/// for methods that ignore the base it stays an ordinary model.
/// </summary>
public sealed class MergeInputSet : IDisposable
{
    private readonly List<IMergeSource> owned = [];
    private readonly Dictionary<string, IMergeSource> byReference = new(StringComparer.Ordinal);

    public MergeInputSet(MergeRecipe recipe)
    {
        Recipe = recipe;
        UsesBase = recipe.Method.BaseModel != BaseModelUse.Unused;
        if (recipe.BaseStage is not null || recipe.Models.Any(m => m.Stage is not null))
            throw new InvalidOperationException($"{recipe.Source}: stage references must be resolved before opening inputs (MergeRunner.Run(MergePlan))");
        try
        {
            if (recipe.BaseModel is not null)
            {
                if (!Directory.Exists(recipe.BaseModel)) throw new DirectoryNotFoundException($"{recipe.Source}: base_model: '{recipe.BaseModel}' is not a folder");
                Base = Own(new CheckpointSource(recipe.BaseModel));
                byReference[recipe.BaseModel] = Base;
            }
            var models = new List<(RecipeModel, IMergeSource)>();
            foreach (var m in recipe.Models)
            {
                string field = recipe.Slices is null ? $"models[{m.Index}].model" : "slices: model";
                var source = Open(m, field);
                if (recipe.Slices is null && UsesBase && ReferenceEquals(source, Base)) continue;
                models.Add((m, source));
            }
            if (models.Count == 0 && recipe.Slices is null && !(UsesBase && Base is not null && recipe.Method.MergesBaseAlone)) throw new InvalidDataException($"{recipe.Source}: models: nothing to merge besides the base model");
            Models = models;
            Layout = ModelLayout.Read(ReferenceFolder, ReferenceNames);
            CheckLayout();
            Resolver = new ParameterResolver(recipe, Layout);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    IMergeSource Open(RecipeModel m, string field)
    {
        if (byReference.TryGetValue(m.Reference, out var known)) return known;
        if (!Directory.Exists(m.Path)) throw new DirectoryNotFoundException($"{Recipe.Source}: {field}: '{m.Path}' is not a folder");
        IMergeSource source;
        if (m.Lora is not null)
        {
            if (!File.Exists(Path.Combine(m.Lora, LoraAdapter.ConfigFile))) throw new InvalidDataException($"{Recipe.Source}: {field}: '{m.Lora}' (after '+') is not a LoRA adapter folder ({LoraAdapter.ConfigFile} missing)");
            var checkpoint = new CheckpointSource(m.Path);
            try { source = Own(new ModelPlusLoraSource(checkpoint, LoraAdapter.Load(m.Lora), m.Lora)); }
            catch { checkpoint.Dispose(); throw; }
        }
        else if (File.Exists(Path.Combine(m.Path, LoraAdapter.ConfigFile)))
        {
            if (Base is null) throw new InvalidDataException($"{Recipe.Source}: base_model: missing; {field} is a LoRA adapter, and adapters are merged over the checkpoint they were trained on");
            source = Own(new LoraExpertSource(m.Path, Base, LoraAdapter.Load(m.Path)));
        }
        else source = Own(new CheckpointSource(m.Path));
        byReference[m.Reference] = source;
        return source;
    }

    public MergeRecipe Recipe { get; }
    public bool UsesBase { get; }
    public CheckpointSource? Base { get; }
    public IReadOnlyList<(RecipeModel Model, IMergeSource Source)> Models { get; } = [];
    /// <summary>The reference's architecture and layer stacks (the depth scale of gradients, what slices index).</summary>
    public ModelLayout Layout { get; private set; } = null!;

    /// <summary>Layers of the reference's (first) layer stack.</summary>
    public int Layers => Layout.Stacks.Count > 0 ? Layout.Stacks[0].Count : 0;
    public ParameterResolver Resolver { get; } = null!;

    public bool AnyLora => Models.Any(m => m.Source is LoraExpertSource);
    public bool AllLora => Models.Count > 0 && Models.All(m => m.Source is LoraExpertSource);

    /// <summary>The checkpoint whose key set, config and tokenizer the output follows: the base, else the first model (of the first slice).</summary>
    public IMergeSource Reference => (IMergeSource?)Base ?? (Recipe.Slices is { } s ? byReference[s[0].Sources[0].Model.Reference] : Models[0].Source);

    /// <summary>The reference's folder (config.json, tokenizer files): for model+lora, the model's.</summary>
    public string ReferenceFolder => Reference is ModelPlusLoraSource p ? p.Model.Path : Reference.Path;

    IReadOnlyList<string> ReferenceNames => (Reference switch
    {
        CheckpointSource c => c.Names,
        ModelPlusLoraSource p => p.Model.Names,
        _ => throw new InvalidOperationException(),
    }).Order(StringComparer.Ordinal).ToList();

    public IReadOnlyList<string> Names => ReferenceNames;

    /// <summary>Layers of the output: the reference's, or the slices' total.</summary>
    public int OutputLayers => Recipe.Slices?.Sum(s => s.Length) ?? Layers;

    T Own<T>(T s) where T : IMergeSource { owned.Add(s); return s; }

    /// <summary>
    /// Slices need exactly one known layer stack, and gradients over depth a known stack: otherwise they are refused
    /// naming the field and the architecture (a gradient would silently give every tensor its first value).
    /// </summary>
    void CheckLayout()
    {
        string arch = Layout.Architecture ?? "?";
        if (Recipe.Slices is not null && !Layout.KnowsStacks)
            throw new InvalidDataException($"{Recipe.Source}: slices: Amalgam does not know the layer stacks of architecture {arch} (config.json architectures), so it cannot index its layers; merge it without slices");
        if (Recipe.Slices is not null && Layout.Stacks.Count > 1)
            throw new InvalidDataException($"{Recipe.Source}: slices: architecture {arch} has {Layout.Stacks.Count} layer stacks ({string.Join(", ", Layout.Stacks.Select(x => x.Name))}); slices index one stack, so Amalgam refuses them here");
        if (Layout.KnowsStacks) return;
        bool Gradient(ParameterSetting p) => p is GradientSetting || p is ConditionalSetting c && c.Conditions.Any(x => Gradient(x.Value));
        bool IsList(string name) => Recipe.Method.Parameters.Any(p => p.Name == name && p.Kind == ParameterKind.List);
        foreach (var (name, setting) in Recipe.Parameters)
            if (!IsList(name) && Gradient(setting))
                throw new InvalidDataException($"{Recipe.Source}: parameters.{name}: a gradient over depth needs the layer stacks, which Amalgam does not know for architecture {arch}; give one value");
        foreach (var m in Recipe.Models)
            foreach (var (name, setting) in m.Parameters)
                if (!IsList(name) && Gradient(setting))
                    throw new InvalidDataException($"{Recipe.Source}: models[{m.Index}].parameters.{name}: a gradient over depth needs the layer stacks, which Amalgam does not know for architecture {arch}; give one value");
    }

    /// <summary>Every output tensor, in checkpoint-key order (<paramref name="order"/> may reorder them).</summary>
    public IReadOnlyList<MergeKey> Keys(Func<IReadOnlyList<string>, IReadOnlyList<string>>? order = null)
    {
        List<MergeKey> keys;
        if (Recipe.Slices is null)
        {
            // The base is every key's reference (shapes, copies of unchanged layers) even when the method ignores it.
            KeyInput? b = Base is not null ? new KeyInput(new RecipeModel(Base.Path, new Dictionary<string, ParameterSetting>(), -1), Base, "") : null;
            keys = Names.Select(n => new MergeKey(n, Resolver.DepthOf(n), b is null ? null : b with { Name = n },
                Models.Select(m => new KeyInput(m.Model, m.Source, n)).ToList())).ToList();
        }
        else keys = SliceKeys();
        if (order is null) return keys;
        var byName = keys.ToDictionary(k => k.Output, StringComparer.Ordinal);
        return order(keys.Select(k => k.Output).ToList()).Select(n => byName[n]).ToList();
    }

    /// <summary>
    /// Slices: tensors outside the layers come from the first slice's sources (embeddings) or the last slice's
    /// (final norm, lm_head), at t = 0 like every tensor outside the layers; layer tensors of output layer
    /// offset + j come from layer start + j of each source of their slice, at t = j / (slice length − 1).
    /// </summary>
    List<MergeKey> SliceKeys()
    {
        var slices = Recipe.Slices!;
        var keys = new List<MergeKey>();
        var reference = Names;
        // Layer i's names up to their suffix (model.layers.3., GPT-2's h.3.), as the reference names them.
        string head = reference.Select(Layout.Locate).OfType<LayerPosition>().FirstOrDefault()?.Head ?? "model.layers.";
        string LayerPrefix(int layer) => head + layer + ".";
        var suffixes = reference.Select(Layout.Locate).OfType<LayerPosition>().Select(p => p.Rest).Distinct(StringComparer.Ordinal).ToList();
        (KeyInput? Base, List<KeyInput> Models) Split(RecipeSlice s, Func<SliceSource, string> name, int sliceIndex)
        {
            KeyInput? b = null;
            var ms = new List<KeyInput>();
            foreach (var src in s.Sources)
            {
                var source = byReference[src.Model.Reference];
                var input = new KeyInput(src.Model, source, name(src));
                if (UsesBase && Base is not null && ReferenceEquals(source, Base) && b is null) b = input;
                else ms.Add(input);
            }
            if (UsesBase && Base is not null && b is null)
                throw new InvalidDataException($"{Recipe.Source}: slices[{sliceIndex}].sources: {Recipe.Method.Name} uses the base model, which is not among this slice's sources");
            return (b, ms);
        }
        foreach (var n in reference.Where(n => Layout.Locate(n) is null))
        {
            int si = Layout.IsPre(n) ? 0 : slices.Count - 1;
            var (b, ms) = Split(slices[si], _ => n, si);
            keys.Add(new MergeKey(n, 0, b, ms));
        }
        int offset = 0;
        for (int si = 0; si < slices.Count; si++)
        {
            var s = slices[si];
            var first = s.Sources[0];
            var firstSource = byReference[first.Model.Reference];
            for (int j = 0; j < s.Length; j++)
            {
                double t = s.Length > 1 ? (double)j / (s.Length - 1) : 1;
                string prefix = LayerPrefix(first.Start + j);
                foreach (var suffix in suffixes)
                {
                    if (!firstSource.Contains(prefix + suffix))
                        throw new InvalidDataException($"{Recipe.Source}: slices[{si}].sources[0].layer_range: {first.Model.Reference} has no '{prefix + suffix}' (layer {first.Start + j} is out of range)");
                    int j1 = j;
                    var (b, ms) = Split(s, src => LayerPrefix(src.Start + j1) + suffix, si);
                    keys.Add(new MergeKey(LayerPrefix(offset + j) + suffix, t, b, ms));
                }
            }
            offset += s.Length;
        }
        return keys.OrderBy(k => k.Output, StringComparer.Ordinal).ToList();
    }


    /// <summary>What the method sees for one key, from tensors already loaded and converted.</summary>
    public MergeTensorInputs Inputs(MergeKey key, Tensor? baseTensor, IReadOnlyList<Tensor> models, Generator? random, IWholeModelPass? pass) =>
        new(key.Output, UsesBase ? baseTensor : null, models,
            key.Models.Select(m => Resolver.ForModel(m.Model, key.Output, key.T)).ToList(),
            Resolver.Global(key.Output, key.T), random, pass)
        { ModelNames = key.Models.Select(m => m.Model.Reference).ToList(), BaseName = UsesBase ? Recipe.BaseModel : null };

    /// <summary>The same for the plain (unsliced) key <paramref name="name"/>.</summary>
    public MergeTensorInputs Inputs(string name, Tensor? baseTensor, IReadOnlyList<Tensor> models, Generator? random, IWholeModelPass? pass) =>
        new(name, UsesBase ? baseTensor : null, models,
            Models.Select(m => Resolver.ForModel(m.Model, name)).ToList(),
            Resolver.Global(name), random, pass)
        { ModelNames = Models.Select(m => m.Model.Reference).ToList(), BaseName = UsesBase ? Recipe.BaseModel : null };

    public Generator? RandomFor(string name) => Recipe.Method.IsRandomized ? TensorSeed.Generator(Recipe.RandomSeed, name) : null;

    public void Dispose()
    {
        // LoRA sources first: they borrow the base.
        foreach (var s in owned.AsEnumerable().Reverse()) s.Dispose();
        owned.Clear();
    }
}
