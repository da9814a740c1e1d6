using TorchSharp;
using static TorchSharp.torch;

namespace Amalgam.Merging.Methods;

/// <summary>
/// mergekit's core_space (after Panariello et al., NeurIPS 2025, "Accurate and Efficient Low-Rank Model Merging in
/// Core Space"), per tensor, as mergekit computes it:
/// <list type="bullet">
/// <item>a tensor whose name contains none of <c>lora_A</c>, <c>lora_B</c>, <c>lora_</c>, <c>adapter</c> (every tensor
/// of an ordinary checkpoint) is the plain mean of all distinct inputs, the base included; weights are not used;</item>
/// <item>otherwise, with δᵢ = θᵢ − θ₀ as factors (a <c>lora_A</c> tensor: Aᵢ = δᵢ, Bᵢ = I; a <c>lora_B</c> tensor:
/// Bᵢ = δᵢ, Aᵢ = I; any other 2-D tensor: Bᵢ = U_k, Aᵢ = S_k·V_kᵀ of δᵢ's SVD, k = max(1, min(16, ⌊min(shape)/4⌋))),
/// U = left singular vectors of [B₁ … B_N], V = right singular vectors of [A₁; …; A_N], both cut to
/// c = min(their counts), and θ₀ + U_c·mean(U_cᵀBᵢAᵢV_c)·V_cᵀ = θ₀ + P_U·mean(BᵢAᵢ)·P_V (projections, so the
/// SVD's signs do not matter); a tensor that is not 2-D falls back to the mean, as mergekit's does.</item>
/// </list>
/// Without a base the first model is the base. One input: that input.
/// </summary>
public sealed class CoreSpace : IMergeMethod
{
    public string Name => "core_space";
    public string Description => "Core Space merge: LoRA-named tensors merged in a shared SVD subspace, every other tensor averaged (mergekit core_space)";
    public BaseModelUse BaseModel => BaseModelUse.Optional;
    public bool IsRandomized => false;
    public bool MergesBaseAlone => true;

    public IReadOnlyList<ParameterSpec> Parameters { get; } =
    [
        // mergekit declares weight as a global parameter and reads it nowhere; its example gives it per model.
        new("weight", ParameterScope.PerModel, ParameterKind.Number, 1.0, "accepted for mergekit compatibility; no effect (mergekit's core_space averages with equal weights)"),
    ];

    static readonly string[] LoraMarkers = ["lora_A", "lora_B", "lora_", "adapter"];

    public Tensor Merge(MergeTensorInputs inputs)
    {
        using var scope = NewDisposeScope();
        var all = (inputs.Base is null ? inputs.Models : [inputs.Base, .. inputs.Models]).ToList();
        if (all.Count == 0) throw new InvalidDataException($"tensor '{inputs.Name}': core_space needs at least one model");
        var dtype = all[0].dtype;
        if (all.Count == 1) return all[0].clone().MoveToOuterDisposeScope();
        var b = all[0].to(dtype);
        var others = all.Skip(1).Select(m => m.to(dtype)).ToList();
        if (!LoraMarkers.Any(inputs.Name.Contains) || b.dim() != 2)
            return (stack(all.Select(m => m.to(dtype)).ToList(), 0).sum(dim: 0) / all.Count).MoveToOuterDisposeScope();

        var As = new List<Tensor>();
        var Bs = new List<Tensor>();
        foreach (var m in others)
        {
            var delta = m - b;
            if (inputs.Name.Contains("lora_A", StringComparison.Ordinal)) { As.Add(delta); Bs.Add(eye(delta.shape[0], dtype: dtype)); }
            else if (inputs.Name.Contains("lora_B", StringComparison.Ordinal)) { Bs.Add(delta); As.Add(eye(delta.shape[1], dtype: dtype)); }
            else
            {
                long rank = Math.Max(1, Math.Min(16, Math.Min(delta.shape[0], delta.shape[1]) / 4));
                var (u, s, vh) = linalg.svd(delta, fullMatrices: false);
                Bs.Add(u.narrow(1, 0, rank));
                As.Add(diag(s.narrow(0, 0, rank)).matmul(vh.narrow(0, 0, rank)));
            }
        }
        var ub = linalg.svd(cat(Bs, 1), fullMatrices: false).Item1;
        var va = linalg.svd(cat(As, 0), fullMatrices: false).Item3.t();
        long common = Math.Min(ub.shape[1], va.shape[1]);
        ub = ub.narrow(1, 0, common);
        va = va.narrow(1, 0, common);
        Tensor? core = null;
        for (int i = 0; i < Bs.Count; i++)
        {
            var c = ub.t().matmul(Bs[i]).matmul(As[i]).matmul(va);
            core = core is null ? c : core + c;
        }
        var merged = ub.matmul(core! / Bs.Count).matmul(va.t());
        return (b + merged).MoveToOuterDisposeScope();
    }
}
