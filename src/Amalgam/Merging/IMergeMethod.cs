using static TorchSharp.torch;

namespace Amalgam.Merging;

/// <summary>
/// A weight-space merge method: a small stateless strategy with a name, a typed parameter schema and a pure
/// function from the input tensors of one checkpoint key to the merged tensor. The executor (recipes, streaming,
/// I/O) resolves every parameter for the tensor at hand before calling <see cref="Merge"/>.
/// </summary>
public interface IMergeMethod
{
    /// <summary>The mergekit name, e.g. <c>ties</c>.</summary>
    string Name { get; }

    string Description { get; }

    /// <summary>Every parameter the method accepts; anything else in a recipe is an error.</summary>
    IReadOnlyList<ParameterSpec> Parameters { get; }

    /// <summary>Whether a base model is required (task-vector methods) or optional/unused.</summary>
    BaseModelUse BaseModel { get; }

    /// <summary>Whether results depend on <see cref="MergeTensorInputs.Random"/>.</summary>
    bool IsRandomized { get; }

    /// <summary>
    /// Optional whole-model statistics (e.g. <c>trim_scope: model</c>): when not null, the executor streams every
    /// tensor through <see cref="IWholeModelPass.Observe"/> for <see cref="IWholeModelPass.Rounds"/> rounds before
    /// merging, and hands the pass back in <see cref="MergeTensorInputs.Pass"/>.
    /// </summary>
    IWholeModelPass? CreatePass(MergeParameters global, int models) => null;

    /// <summary>
    /// Global parameters a recipe may also write at its top level, beside <c>merge_method</c> (mergekit's
    /// <c>examples/cabs.yml</c> does so for <c>default_n_val</c>, <c>default_m_val</c> and <c>pruning_order</c>).
    /// </summary>
    IReadOnlyList<string> TopLevelParameters => [];

    /// <summary>
    /// Whether a recipe with no model besides the base merges to the base (mergekit's core_space and cabs return it)
    /// instead of being refused.
    /// </summary>
    bool MergesBaseAlone => false;

    /// <summary>
    /// Merges one tensor. Inputs are float32 (float64 in reference tests), all of one shape; the result has that
    /// shape and is a new tensor (dispose-scope friendly: created inside the caller's scope).
    /// </summary>
    Tensor Merge(MergeTensorInputs inputs);
}

public enum BaseModelUse { Required, Optional, Unused }

/// <summary>A multi-round statistic over the whole model, computed one tensor at a time.</summary>
public interface IWholeModelPass
{
    int Rounds { get; }
    void Observe(int round, MergeTensorInputs inputs);
    void EndRound(int round);
}

/// <summary>
/// What <see cref="IMergeMethod.Merge"/> sees for one checkpoint key: the base tensor (null when the method does
/// not use one), the models' tensors in recipe order, their resolved per-model parameters, the resolved global
/// parameters, a generator seeded from (seed, tensor name) for randomised methods, and the layer position.
/// </summary>
public sealed record MergeTensorInputs(
    string Name,
    Tensor? Base,
    IReadOnlyList<Tensor> Models,
    IReadOnlyList<MergeParameters> ModelParameters,
    MergeParameters Global,
    Generator? Random = null,
    IWholeModelPass? Pass = null)
{
    /// <summary>How the recipe names each of <see cref="Models"/> (its reference: the full path, or a stage name), when known.</summary>
    public IReadOnlyList<string>? ModelNames { get; init; }

    /// <summary>How the recipe names the base model, when there is one.</summary>
    public string? BaseName { get; init; }
}

/// <summary>
/// A method whose result at a row depends only on the inputs at that row, once per-tensor statistics (TIES's
/// magnitude thresholds) are known: the executor then merges each key in row blocks, so that it never holds whole
/// float32 inputs and each block's dozen passes stay in cache. The result must be bit-for-bit what
/// <see cref="IMergeMethod.Merge"/> gives on the whole tensor.
/// </summary>
public interface IRowBlockMethod
{
    /// <summary>
    /// The per-block merge of one tensor of <paramref name="rows"/> rows, or null when this tensor (these
    /// parameters) must be merged whole. <paramref name="header"/> holds zero-row inputs and every parameter;
    /// <paramref name="block"/>(start, count) loads rows [start, start + count) of every input in the compute dtype
    /// into the caller's dispose scope.
    /// </summary>
    IRowBlockMerger? Prepare(MergeTensorInputs header, long rows, Func<long, long, MergeTensorInputs> block);
}

/// <summary>The merge of one tensor, one row block at a time; owns what <see cref="IRowBlockMethod.Prepare"/> computed.</summary>
public interface IRowBlockMerger : IDisposable
{
    /// <summary>The merged rows [start, start + rows of <paramref name="block"/>).</summary>
    Tensor Merge(long start, MergeTensorInputs block);
}
