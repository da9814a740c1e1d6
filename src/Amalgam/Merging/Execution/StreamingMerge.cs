using System.Diagnostics;
using Amalgam.Merging.Recipes;
using Amalgam.Tensors;
using static TorchSharp.torch;

namespace Amalgam.Merging.Execution;

/// <summary>
/// The streaming executor for <c>output: model</c>: one output key at a time, every input memory-mapped, each
/// tensor converted to the compute dtype, merged, checked for NaN/Inf, converted to the output dtype and handed to
/// a sink (the <see cref="ShardedCheckpointWriter"/> here; the model's parameters in <see cref="InMemoryMerge"/>),
/// with one dispose scope per key so that peak memory stays near (inputs + a few) × the largest tensor. The folder
/// appears only when everything is written.
/// </summary>
public static class StreamingMerge
{
    /// <summary>One planned output tensor: its key, spec, and the common row count when embeddings of different vocab sizes were cut.</summary>
    internal sealed record Planned(MergeKey Key, TensorSpec Spec, bool IsFloat, long? Rows, bool Unchanged, bool Permuted = false);

    /// <summary>The plan of every output tensor, the whole-model pass (when the method has one) already run.</summary>
    internal sealed record KeyPlan(IReadOnlyList<Planned> Tensors, IWholeModelPass? Pass, List<string> Notes, Vocabulary.VocabularyPlan? Vocabulary = null)
    {
        public long? Vocab => Tensors.FirstOrDefault(p => p.Rows is not null)?.Rows;
        public IReadOnlyList<DType> FloatTypes => Tensors.Where(p => p.IsFloat).Select(p => p.Spec.DType).Distinct().ToList();
    }

    public static MergeSummary Run(MergeInputSet inputs, string outDir, MergeRunOptions? options = null)
    {
        options ??= new();
        var recipe = inputs.Recipe;
        var clock = Stopwatch.StartNew();
        var plan = Prepare(inputs, options);
        var counts = new MergeCounts();
        AtomicDirectory.Write(outDir, staging =>
        {
            using (var writer = new ShardedCheckpointWriter(staging, plan.Tensors.Select(p => p.Spec).ToList(), recipe.OutShardSize, new Dictionary<string, string> { ["format"] = "pt" }))
            {
                MergeEach(inputs, plan, options, counts, (name, result) => writer.Write(name, result.contiguous()));
                writer.Commit();
            }
            var types = plan.FloatTypes;
            OutputFolderFiles.WriteConfig(inputs.ReferenceFolder, staging, types.Count == 1 ? RecipeDtype.TorchName(types[0].ToScalarType()) : null, plan.Vocab,
                recipe.Slices is null ? null : inputs.OutputLayers, recipe.Slices is null ? "num_hidden_layers" : inputs.Layout.Stacks[0].CountField);
            if (plan.Vocabulary is { } vocabulary)
            {
                if (Vocabulary.VocabularyFiles.Write(vocabulary, staging) is { } note) plan.Notes.Add(note);
            }
            else OutputFolderFiles.CopyTokenizer(TokenizerFolder(inputs), staging);
            OutputFolderFiles.WriteChatTemplate(ChatTemplates.Resolve(recipe.ChatTemplate), staging);
            OutputFolderFiles.WriteRecipe(recipe, staging, options.RecipeYaml);
            OutputFolderFiles.WriteReadme(recipe, MergeOutput.Model, staging, plan.Notes);
        });
        long written = plan.Tensors.Sum(p => p.Spec.ByteLength);
        return new MergeSummary(Path.GetFullPath(outDir), MergeOutput.Model, counts.Merged, counts.Copied, counts.Read, written, clock.Elapsed, plan.Notes);
    }

    internal sealed class MergeCounts { public int Merged, Copied; public long Read; }

    /// <summary>Plans every output tensor and runs the method's whole-model pass, if any.</summary>
    internal static KeyPlan Prepare(MergeInputSet inputs, MergeRunOptions options)
    {
        var notes = new List<string>();
        if (inputs.Layout.CannotRunNote is { } cannot) notes.Add(cannot);
        var vocabulary = Vocabulary.VocabularyPlan.Build(inputs, notes);
        var plan = inputs.Keys(options.Order).Select(k => Plan(inputs, k, notes, vocabulary)).ToList();
        if (inputs.Recipe.Slices is { } slices)
            notes.Add($"{slices.Count} slices: {inputs.OutputLayers} layers ({string.Join(" + ", slices.Select(s => string.Join(" | ", s.Sources.Select(x => $"{Path.GetFileName(x.Model.Reference.TrimEnd('/'))}[{x.Start}, {x.End})"))))})");
        var pass = inputs.Recipe.Method.CreatePass(inputs.Resolver.Global(""), inputs.Models.Count);
        if (pass is not null)
        {
            for (int round = 0; round < pass.Rounds; round++)
            {
                for (int i = 0; i < plan.Count; i++)
                {
                    var p = plan[i];
                    if (!p.IsFloat || p.Unchanged) continue;
                    options.Progress?.Invoke(new MergeProgress($"pass {round + 1}/{pass.Rounds}", i, plan.Count, p.Spec.Name));
                    using var scope = NewDisposeScope();
                    using var random = inputs.RandomFor(p.Spec.Name);
                    pass.Observe(round, Load(inputs, p, random, null, vocabulary));
                }
                pass.EndRound(round);
            }
        }
        return new KeyPlan(plan, pass, notes, vocabulary);
    }

    /// <summary>
    /// The per-tensor work shared by the streaming executor and the in-memory merge: each key merged (or copied, for
    /// integer buffers and layers no input changes), checked, converted to its output dtype and handed to
    /// <paramref name="sink"/> inside its own dispose scope.
    /// </summary>
    internal static void MergeEach(MergeInputSet inputs, KeyPlan plan, MergeRunOptions options, MergeCounts counts, Action<string, Tensor> sink)
    {
        var recipe = inputs.Recipe;
        for (int i = 0; i < plan.Tensors.Count; i++)
        {
            var p = plan.Tensors[i];
            string name = p.Spec.Name;
            options.Progress?.Invoke(new MergeProgress("merge", i, plan.Tensors.Count, name));
            using var scope = NewDisposeScope();
            Tensor result;
            if (!p.IsFloat || p.Unchanged)
            {
                var from = p.Key.Base ?? p.Key.Models[0];
                result = from.Source.Load(from.Name, recipe.ComputeDtype);
                counts.Read += from.Source.StoredBytes(from.Name);
                counts.Copied++;
            }
            else
            {
                using var random = inputs.RandomFor(name);
                counts.Read += (inputs.UsesBase && p.Key.Base is { } b ? b.Source.StoredBytes(b.Name) : 0) + p.Key.Models.Sum(m => m.Source.StoredBytes(m.Name));
                counts.Merged++;
                // Permuted vocabulary rows (a tokenizer union) are gathered from whole inputs: merged whole.
                if (!p.Permuted && options.Fused && FusedTaskVector.TryMerge(inputs, p, plan.Pass) is { } fused)
                {
                    options.OnFused?.Invoke(name);
                    sink(name, fused);
                    continue;
                }
                if (!p.Permuted && InRowBlocks(inputs, p, random, plan.Pass, options.BlockElements) is { } blocked)
                {
                    sink(name, blocked);
                    continue;
                }
                var args = Load(inputs, p, random, plan.Pass, plan.Vocabulary);
                result = recipe.Method.Merge(args);
                Check(recipe, name, result, p.Spec.Shape);
            }
            sink(name, Stored(recipe, name, result, p.Spec.DType.ToScalarType()));
        }
        options.Progress?.Invoke(new MergeProgress("merge", plan.Tensors.Count, plan.Tensors.Count, ""));
    }

    /// <summary>
    /// The merged key in its output dtype, merged one row block at a time (about <paramref name="blockElements"/>
    /// elements of each input: every input's block and the method's temporaries stay in cache) (<see cref="IRowBlockMethod"/>): each
    /// block of every input read from the mapping, converted, merged, checked and stored into the output tensor.
    /// Null when the method, the key or an input does not allow it (the whole-tensor path then runs); a problem the
    /// checks find also reruns the key whole, so that the message is the whole path's.
    /// </summary>
    static Tensor? InRowBlocks(MergeInputSet inputs, Planned p, Generator? random, IWholeModelPass? pass, long blockElements)
    {
        if (blockElements <= 0 || inputs.Recipe.Method is not IRowBlockMethod method || p.Spec.Shape.Length == 0) return null;
        var used = (inputs.UsesBase && p.Key.Base is not null ? [p.Key.Base] : Array.Empty<KeyInput>()).Concat(p.Key.Models).ToList();
        var compute = inputs.Recipe.ComputeDtype;
        var outType = p.Spec.DType.ToScalarType();
        Tensor? Rows(KeyInput k, long start, long count)
        {
            var raw = k.Source.LoadRows(k.Name, start, count);
            if (raw is null || raw.dtype == compute) return raw;
            var converted = raw.to(compute);
            raw.Dispose();
            return converted;
        }
        MergeTensorInputs Block(long start, long count)
        {
            var baseTensor = inputs.UsesBase && p.Key.Base is not null ? Rows(p.Key.Base, start, count)! : null;
            return inputs.Inputs(p.Key, baseTensor, p.Key.Models.Select(m => Rows(m, start, count)!).ToList(), random, pass);
        }
        using (var probe = NewDisposeScope())
            if (used.Any(k => k.Source.LoadRows(k.Name, 0, 0) is null)) return null;
        long rows = p.Spec.Shape[0];
        long rowElements = p.Spec.Shape.Skip(1).Aggregate(1L, (a, b) => a * b);
        long blockRows = Math.Max(1, blockElements / Math.Max(1, rowElements));
        using var merger = method.Prepare(Block(0, 0), rows, Block);
        if (merger is null) return null;
        var output = empty(p.Spec.Shape, outType);
        for (long start = 0; start < rows; start += blockRows)
        {
            using var scope = NewDisposeScope();
            long count = Math.Min(blockRows, rows - start);
            var result = merger.Merge(start, Block(start, count));
            if (!result.shape.SequenceEqual([count, .. p.Spec.Shape.Skip(1)]) || !isfinite(result).all().item<bool>()) { output.Dispose(); return null; }
            var stored = result.to(outType);
            if (stored.dtype != result.dtype && stored.is_floating_point() && !isfinite(stored).all().item<bool>()) { output.Dispose(); return null; }
            output.narrow(0, start, count).copy_(stored);
        }
        return output;
    }

    /// <summary>The folder the tokenizer files come from: the reference, or the model named by <c>tokenizer_source: model:REF</c>.</summary>
    internal static string TokenizerFolder(MergeInputSet inputs)
    {
        var recipe = inputs.Recipe;
        if (recipe.Tokenizer?.Model is not { } wanted) return inputs.ReferenceFolder;
        string full = Path.GetFullPath(wanted);
        var match = recipe.Models.FirstOrDefault(m => m.Reference == wanted || m.Path == full || Path.GetFileName(m.Path.TrimEnd('/')) == wanted)
            ?? (recipe.BaseModel is { } b && (b == full || Path.GetFileName(b.TrimEnd('/')) == wanted) ? new RecipeModel(b, new Dictionary<string, ParameterSetting>(), -1) : null)
            ?? throw new InvalidDataException($"{recipe.Source}: tokenizer_source: '{wanted}' is not one of the merge's models");
        return match.Path;
    }

    /// <summary>
    /// <paramref name="result"/> converted to the output dtype; finite values that overflow it (a float16 output of
    /// large weights) are refused naming the tensor, as non-finite results are: nothing is written.
    /// </summary>
    internal static Tensor Stored(MergeRecipe recipe, string name, Tensor result, ScalarType dtype)
    {
        var stored = result.to(dtype);
        if (stored.dtype != result.dtype && stored.is_floating_point() && !isfinite(stored).all().item<bool>() && isfinite(result).all().item<bool>())
            throw new InvalidDataException($"tensor '{name}': {recipe.Method.Name}'s result overflows {dtype} (largest magnitude {result.abs().max().to(ScalarType.Float64).item<double>():G4}); nothing was written");
        return stored;
    }

    /// <summary>The method's result must have the expected shape and only finite values, or nothing is written.</summary>
    internal static void Check(MergeRecipe recipe, string name, Tensor result, long[] shape)
    {
        if (!result.shape.SequenceEqual(shape))
            throw new InvalidDataException($"tensor '{name}': {recipe.Method.Name} returned shape [{string.Join(", ", result.shape)}], expected [{string.Join(", ", shape)}]");
        if (!isfinite(result).all().item<bool>())
            throw new InvalidDataException($"tensor '{name}': {recipe.Method.Name} produced NaN or Inf values; nothing was written");
    }

    static bool IsFloat(DType d) => d is DType.F32 or DType.F16 or DType.BF16;

    static bool IsEmbedding(string name) => name.Contains("embed_tokens", StringComparison.Ordinal) || name.Contains("lm_head", StringComparison.Ordinal);

    static string Label(MergeInputSet inputs, KeyInput k) =>
        ReferenceEquals(k.Source, inputs.Base) ? $"base_model ({k.Source.Path})" : inputs.Recipe.Slices is null ? $"models[{k.Model.Index}] ({k.Source.Path})" : $"{k.Source.Path}";

    /// <summary>
    /// Shapes must agree, except the vocabulary rows of embed_tokens / lm_head: there mergekit takes the common
    /// sub-matrix (the first min(vocab) rows), and so does this, saying so in the notes.
    /// </summary>
    static Planned Plan(MergeInputSet inputs, MergeKey key, List<string> notes, Vocabulary.VocabularyPlan? vocabulary)
    {
        var recipe = inputs.Recipe;
        string name = key.Output;
        var first = key.Base ?? key.Models[0];
        if (!first.Source.Contains(first.Name)) throw new InvalidDataException($"tensor '{first.Name}': missing from {Label(inputs, first)}");
        var (dtype, shape) = first.Source.Describe(first.Name);
        var used = new List<KeyInput>();
        if (key.Base is not null) used.Add(key.Base);
        foreach (var m in key.Models)
        {
            if (!m.Source.Contains(m.Name)) throw new InvalidDataException($"tensor '{m.Name}': missing from {Label(inputs, m)}");
            used.Add(m);
        }
        long? rows = null;
        if (vocabulary is not null && IsEmbedding(name) && shape.Length == 2 && IsFloat(dtype))
        {
            // Every input's rows are permuted into the output vocabulary (EmbeddingPermutation): only the width must agree.
            foreach (var u in used)
                if (u.Source.Describe(u.Name).Shape is var other && (other.Length != 2 || other[1] != shape[1]))
                    throw new InvalidDataException($"tensor '{name}': shape [{string.Join(", ", other)}] in {Label(inputs, u)} does not match [{string.Join(", ", shape)}] in {Label(inputs, first)} (embedding sizes must match)");
            return new Planned(key, new TensorSpec(name, OutputType(recipe, dtype), [vocabulary.Rows, shape[1]]), true, vocabulary.Rows, false, Permuted: true);
        }
        foreach (var u in used)
        {
            var other = u.Source.Describe(u.Name).Shape;
            if (other.SequenceEqual(shape)) continue;
            bool sameTail = other.Length == shape.Length && other.Length >= 1 && other.Skip(1).SequenceEqual(shape.Skip(1));
            if (!(IsEmbedding(name) && sameTail))
                throw new InvalidDataException($"tensor '{name}': shape [{string.Join(", ", other)}] in {Label(inputs, u)} does not match [{string.Join(", ", shape)}] in {Label(inputs, first)}");
            rows = Math.Min(rows ?? shape[0], other[0]);
        }
        if (rows is not null)
        {
            rows = Math.Min(rows.Value, used.Min(u => u.Source.Describe(u.Name).Shape[0]));
            notes.Add($"'{name}': vocabulary sizes differ ({string.Join(", ", used.Select(u => u.Source.Describe(u.Name).Shape[0]).Distinct())}); merged the common first {rows} rows, as mergekit does");
        }
        bool isFloat = IsFloat(dtype);
        var outType = isFloat ? OutputType(recipe, dtype) : dtype;
        var outShape = rows is null ? shape : [rows.Value, .. shape.Skip(1)];
        bool unchanged = inputs.Base is not null && key.Base is not null && key.Models.All(m => !m.Source.Changes(m.Name));
        return new Planned(key, new TensorSpec(name, outType, outShape), isFloat, rows, unchanged);
    }

    /// <summary>out_dtype, else dtype (when it can be stored), else the stored dtype.</summary>
    internal static DType OutputType(MergeRecipe recipe, DType stored) =>
        recipe.OutDtype is { } o ? o.ToDType()
        : recipe.Dtype is { } d && d != ScalarType.Float64 ? d.ToDType()
        : stored;

    /// <summary>Loads one key from every input in the compute dtype, cutting embedding rows when planned.</summary>
    static MergeTensorInputs Load(MergeInputSet inputs, Planned p, Generator? random, IWholeModelPass? pass, Vocabulary.VocabularyPlan? vocabulary)
    {
        var compute = inputs.Recipe.ComputeDtype;
        Tensor Get(KeyInput k)
        {
            var raw = k.Source.Load(k.Name, compute);
            if (!p.Permuted && p.Rows is { } rows && raw.shape[0] != rows) raw = raw.narrow(0, 0, rows);
            if (raw.dtype == compute) return raw;
            var converted = raw.to(compute);
            raw.Dispose(); // keep only the compute copy alive: peak ≈ inputs × the largest tensor
            return converted;
        }
        if (p.Permuted)
        {
            // mergekit permutes the base's rows too, and uses them for defaults even when the method ignores the base.
            var all = (p.Key.Base is not null ? [p.Key.Base] : Array.Empty<KeyInput>()).Concat(p.Key.Models).ToList();
            var permuted = Vocabulary.EmbeddingPermutation.Apply(vocabulary!, p.Spec.Name, all.Select(k => (k.Source, Get(k))).ToList());
            int skip = p.Key.Base is not null ? 1 : 0;
            return inputs.Inputs(p.Key, inputs.UsesBase && skip == 1 ? permuted[0] : null, permuted.Skip(skip).ToList(), random, pass);
        }
        var baseTensor = inputs.UsesBase && p.Key.Base is not null ? Get(p.Key.Base) : null;
        var models = p.Key.Models.Select(Get).ToList();
        return inputs.Inputs(p.Key, baseTensor, models, random, pass);
    }
}
