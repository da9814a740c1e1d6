using System.Diagnostics;
using Amalgam.Merging.Recipes;
using Amalgam.Tensors;
using static TorchSharp.torch;

namespace Amalgam.Merging.Execution;

/// <summary>
/// The streaming executor for <c>output: model</c>: one checkpoint key at a time, every input memory-mapped, each
/// tensor converted to the compute dtype, merged, checked for NaN/Inf, converted to the output dtype and written
/// through <see cref="ShardedCheckpointWriter"/>, with one dispose scope per key so that peak memory stays near
/// (inputs + a few) × the largest tensor. The folder appears only when everything is written.
/// </summary>
public static class StreamingMerge
{
    /// <summary>One planned output tensor: its spec, and the common row count when embeddings of different vocab sizes were cut.</summary>
    sealed record Planned(TensorSpec Spec, bool IsFloat, long? Rows, bool Unchanged);

    public static MergeSummary Run(MergeInputSet inputs, string outDir, MergeRunOptions? options = null)
    {
        options ??= new();
        var recipe = inputs.Recipe;
        var clock = Stopwatch.StartNew();
        var notes = new List<string>();
        var names = inputs.Names;
        if (options.Order is { } order) names = order(names);
        var plan = names.Select(n => Plan(inputs, n, notes)).ToList();
        var sources = (inputs.UsesBase && inputs.Base is not null ? [inputs.Base] : Array.Empty<IMergeSource>()).Concat(inputs.Models.Select(m => m.Source)).ToList();

        var pass = recipe.Method.CreatePass(inputs.Resolver.Global(""), inputs.Models.Count);
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
                    pass.Observe(round, Load(inputs, p, random, null));
                }
                pass.EndRound(round);
            }
        }

        int merged = 0, copied = 0;
        long read = 0;
        long? vocab = plan.FirstOrDefault(p => p.Rows is not null)?.Rows;
        var outDtypes = plan.Where(p => p.IsFloat).Select(p => p.Spec.DType).Distinct().ToList();
        AtomicDirectory.Write(outDir, staging =>
        {
            using (var writer = new ShardedCheckpointWriter(staging, plan.Select(p => p.Spec).ToList(), recipe.OutShardSize, new Dictionary<string, string> { ["format"] = "pt" }))
            {
                for (int i = 0; i < plan.Count; i++)
                {
                    var p = plan[i];
                    string name = p.Spec.Name;
                    options.Progress?.Invoke(new MergeProgress("merge", i, plan.Count, name));
                    using var scope = NewDisposeScope();
                    Tensor result;
                    if (!p.IsFloat || p.Unchanged)
                    {
                        // Integer buffers, and layers no input changes, are the reference's own tensor.
                        result = inputs.Reference.Load(name, recipe.ComputeDtype);
                        read += inputs.Reference.StoredBytes(name);
                        copied++;
                    }
                    else
                    {
                        using var random = inputs.RandomFor(name);
                        var args = Load(inputs, p, random, pass);
                        read += sources.Sum(s => s.StoredBytes(name));
                        result = recipe.Method.Merge(args);
                        Check(recipe, name, result, p.Spec.Shape);
                        merged++;
                    }
                    writer.Write(name, result.to(p.Spec.DType.ToScalarType()).contiguous());
                }
                options.Progress?.Invoke(new MergeProgress("merge", plan.Count, plan.Count, ""));
                writer.Commit();
            }
            OutputFolderFiles.WriteConfig(inputs.Reference.Path, staging, outDtypes.Count == 1 ? RecipeDtype.TorchName(outDtypes[0].ToScalarType()) : null, vocab);
            OutputFolderFiles.CopyTokenizer(inputs.Reference.Path, staging);
            OutputFolderFiles.WriteRecipe(recipe, staging);
            OutputFolderFiles.WriteReadme(recipe, MergeOutput.Model, staging, notes);
        });
        long written = plan.Sum(p => p.Spec.ByteLength);
        return new MergeSummary(Path.GetFullPath(outDir), MergeOutput.Model, merged, copied, read, written, clock.Elapsed, notes);
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

    /// <summary>
    /// Shapes must agree, except the vocabulary rows of embed_tokens / lm_head: there mergekit takes the common
    /// sub-matrix (the first min(vocab) rows), and so does this, saying so in the notes.
    /// </summary>
    static Planned Plan(MergeInputSet inputs, string name, List<string> notes)
    {
        var recipe = inputs.Recipe;
        var reference = inputs.Reference;
        var (dtype, shape) = reference.Describe(name);
        string refLabel = inputs.Base is not null ? $"base_model ({reference.Path})" : $"models[{inputs.Models[0].Model.Index}] ({reference.Path})";
        var used = new List<(string Label, IMergeSource Source)>();
        if (inputs.Base is not null) used.Add((refLabel, inputs.Base));
        foreach (var (m, s) in inputs.Models)
        {
            if (!s.Contains(name)) throw new InvalidDataException($"tensor '{name}': missing from models[{m.Index}] ({s.Path})");
            used.Add(($"models[{m.Index}] ({s.Path})", s));
        }
        long? rows = null;
        foreach (var (label, s) in used)
        {
            var other = s.Describe(name).Shape;
            if (other.SequenceEqual(shape)) continue;
            bool sameTail = other.Length == shape.Length && other.Length >= 1 && other.Skip(1).SequenceEqual(shape.Skip(1));
            if (!(IsEmbedding(name) && sameTail))
                throw new InvalidDataException($"tensor '{name}': shape [{string.Join(", ", other)}] in {label} does not match [{string.Join(", ", shape)}] in {refLabel}");
            rows = Math.Min(rows ?? shape[0], other[0]);
        }
        if (rows is not null)
        {
            rows = Math.Min(rows.Value, used.Min(u => u.Source.Describe(name).Shape[0]));
            notes.Add($"'{name}': vocabulary sizes differ ({string.Join(", ", used.Select(u => u.Source.Describe(name).Shape[0]).Distinct())}); merged the common first {rows} rows, as mergekit does");
        }
        bool isFloat = IsFloat(dtype);
        var outType = isFloat ? OutputType(recipe, dtype) : dtype;
        var outShape = rows is null ? shape : [rows.Value, .. shape.Skip(1)];
        bool unchanged = inputs.Base is not null && inputs.Models.All(m => !m.Source.Changes(name));
        return new Planned(new TensorSpec(name, outType, outShape), isFloat, rows, unchanged);
    }

    /// <summary>out_dtype, else dtype (when it can be stored), else the stored dtype.</summary>
    internal static DType OutputType(MergeRecipe recipe, DType stored) =>
        recipe.OutDtype is { } o ? o.ToDType()
        : recipe.Dtype is { } d && d != ScalarType.Float64 ? d.ToDType()
        : stored;

    /// <summary>Loads one key from every input in the compute dtype, cutting embedding rows when planned.</summary>
    static MergeTensorInputs Load(MergeInputSet inputs, Planned p, Generator? random, IWholeModelPass? pass)
    {
        var compute = inputs.Recipe.ComputeDtype;
        Tensor Get(IMergeSource s)
        {
            var raw = s.Load(p.Spec.Name, compute);
            if (p.Rows is { } rows && raw.shape[0] != rows) raw = raw.narrow(0, 0, rows);
            if (raw.dtype == compute) return raw;
            var converted = raw.to(compute);
            raw.Dispose(); // keep only the compute copy alive: peak ≈ inputs × the largest tensor
            return converted;
        }
        var baseTensor = inputs.UsesBase && inputs.Base is not null ? Get(inputs.Base) : null;
        var models = inputs.Models.Select(m => Get(m.Source)).ToList();
        return inputs.Inputs(p.Spec.Name, baseTensor, models, random, pass);
    }
}
