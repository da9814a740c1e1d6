using Amalgam.Experts;
using Amalgam.Models;
using Amalgam.Tensors;
using static TorchSharp.torch;

namespace Amalgam.Merging.Execution;

/// <summary>One input of a merge as the streaming executor sees it: tensors by checkpoint key, loaded on demand.</summary>
public interface IMergeSource : IDisposable
{
    /// <summary>The folder it came from, for messages.</summary>
    string Path { get; }
    bool Contains(string name);
    /// <summary>Stored dtype and shape.</summary>
    (DType DType, long[] Shape) Describe(string name);
    /// <summary>A new CPU tensor: the stored one for checkpoints; base + ΔW (in <c>compute</c>) for a LoRA expert's targeted layer.</summary>
    Tensor Load(string name, ScalarType compute);
    /// <summary>Whether this input can differ from the base at this key (false for layers a LoRA expert does not target).</summary>
    bool Changes(string name);
    long StoredBytes(string name);
    /// <summary>
    /// Rows [start, start + count) of the stored tensor, read without materialising the rest; null where this
    /// input can only produce the whole tensor (a LoRA expert's targeted layer is computed whole).
    /// </summary>
    Tensor? LoadRows(string name, long start, long count) => null;
}

/// <summary>A full checkpoint, memory-mapped.</summary>
public sealed class CheckpointSource(string path) : IMergeSource
{
    private readonly TensorStore store = TensorStore.Open(path);
    public string Path { get; } = path;
    public IReadOnlyCollection<string> Names => store.Names;
    public bool Contains(string name) => store.Contains(name);
    public (DType DType, long[] Shape) Describe(string name) { var i = store.Info(name); return (i.DType, i.Shape); }
    public Tensor Load(string name, ScalarType compute) => store.Load(name);
    public bool Changes(string name) => true;
    public long StoredBytes(string name) => store.Info(name).ByteLength;
    public Tensor? LoadRows(string name, long start, long count) => store.LoadRows(name, start, count);
    /// <summary>The stored bytes in place, for the fused merge kernels; valid while this source is open.</summary>
    internal unsafe byte* Address(string name) => store.Address(name);
    public void Dispose() => store.Dispose();
}

/// <summary>
/// A LoRA expert seen as a full model: θ = θ0 + s·B·A for the layers it targets (ΔW computed in the compute dtype
/// from <see cref="LowRankDelta.Dense"/>, so the scale, rsLoRA included, is applied exactly once), θ0 elsewhere.
/// A DoRA expert's layer is its folded weight m ⊙ (θ0 + s·B·A) / ‖θ0 + s·B·A‖ (per row), and a modules_to_save
/// tensor is the adapter's copy: both are exactly the weights PEFT's merge_and_unload gives.
/// </summary>
public sealed class LoraExpertSource(string path, CheckpointSource baseModel, LoraAdapter adapter) : IMergeSource
{
    public string Path { get; } = path;
    public LoraAdapter Adapter { get; } = adapter;
    public bool Contains(string name) => baseModel.Contains(name);
    public (DType DType, long[] Shape) Describe(string name) => baseModel.Describe(name);
    public bool Changes(string name) => Module(name) is not null || Adapter.SavedTensors.ContainsKey(name);
    public long StoredBytes(string name) => baseModel.StoredBytes(name);

    public Tensor Load(string name, ScalarType compute)
    {
        if (Adapter.SavedTensors.TryGetValue(name, out var copy)) return copy.to(compute, copy: true);
        if (Module(name) is not { } delta) return baseModel.Load(name, compute);
        using var scope = NewDisposeScope();
        var w = baseModel.Load(name, compute).to(compute);
        if (delta.IsDora)
        {
            if (delta.Magnitude!.shape[0] != w.shape[0])
                throw new InvalidDataException($"{Path}: tensor 'base_model.model.{name[..^".weight".Length]}.lora_magnitude_vector' has {delta.Magnitude.shape[0]} entries but '{name}' has {w.shape[0]} rows");
            return delta.DoraWeight(w, compute).MoveToOuterDisposeScope();
        }
        var dense = delta.Dense(compute);
        if (!dense.shape.SequenceEqual(w.shape))
            throw new InvalidDataException($"{Path}: the update of '{name}' has shape [{string.Join(", ", dense.shape)}] but the base weight is [{string.Join(", ", w.shape)}]");
        return (w + dense).MoveToOuterDisposeScope();
    }

    LowRankDelta? Module(string name) =>
        name.EndsWith(".weight", StringComparison.Ordinal) && Adapter.Deltas.TryGetValue(name[..^".weight".Length], out var d) ? d : null;

    /// <summary>The base is shared and owned by the caller; only the adapter is disposed.</summary>
    public void Dispose() => Adapter.Dispose();
}

/// <summary>
/// mergekit's <c>model+lora</c>: a checkpoint with a LoRA adapter applied, θ = θ_model + s·B·A for the layers the
/// adapter targets. Unlike <see cref="LoraExpertSource"/> the model is not the base, so every key may differ from it.
/// </summary>
public sealed class ModelPlusLoraSource(CheckpointSource model, LoraAdapter adapter, string loraPath) : IMergeSource
{
    private readonly LoraExpertSource applied = new(loraPath, model, adapter);
    public string Path { get; } = model.Path + "+" + loraPath;
    public CheckpointSource Model => model;
    public bool Contains(string name) => model.Contains(name);
    public (DType DType, long[] Shape) Describe(string name) => model.Describe(name);
    public Tensor Load(string name, ScalarType compute) => applied.Load(name, compute);
    public bool Changes(string name) => true;
    public long StoredBytes(string name) => model.StoredBytes(name);
    public void Dispose() { applied.Dispose(); model.Dispose(); }
}
