using Amalgam.Merging;
using static TorchSharp.torch;

namespace Amalgam.Tests.Merging;

/// <summary>Small merge methods that live only in the tests, until the real catalogue lands.</summary>
public static class TestMethods
{
    static readonly ParameterSpec Weight = new("weight", ParameterScope.PerModel, ParameterKind.Number, null, "model weight");

    /// <summary>mergekit's linear: Σ wᵢθᵢ / Σ wᵢ (normalize, default true).</summary>
    public sealed class Linear : IMergeMethod
    {
        public string Name => "linear";
        public string Description => "weighted average (test)";
        public IReadOnlyList<ParameterSpec> Parameters { get; } = [Weight, new("normalize", ParameterScope.Global, ParameterKind.Bool, true, "divide by Σw")];
        public BaseModelUse BaseModel => BaseModelUse.Unused;
        public bool IsRandomized => false;
        public Tensor Merge(MergeTensorInputs inputs)
        {
            var w = inputs.ModelParameters.Select(p => p.Number("weight", 1)).ToArray();
            Tensor sum = zeros_like(inputs.Models[0]);
            for (int i = 0; i < w.Length; i++) sum = sum + inputs.Models[i] * w[i];
            return inputs.Global.Bool("normalize", true) ? sum / w.Sum() : sum;
        }
    }

    /// <summary>mergekit's task_arithmetic: θ0 + λ·Σ wᵢ(θᵢ − θ0).</summary>
    public sealed class TaskArithmetic : IMergeMethod
    {
        public string Name => "task_arithmetic";
        public string Description => "task vectors summed (test)";
        public IReadOnlyList<ParameterSpec> Parameters { get; } =
        [
            Weight,
            new("lambda", ParameterScope.Global, ParameterKind.Number, 1.0, "scale of the sum"),
            new("normalize", ParameterScope.Global, ParameterKind.Bool, false, "divide by Σw"),
        ];
        public BaseModelUse BaseModel => BaseModelUse.Required;
        public bool IsRandomized => false;
        public Tensor Merge(MergeTensorInputs inputs)
        {
            var b = inputs.Base!;
            Tensor sum = zeros_like(b);
            double total = 0;
            for (int i = 0; i < inputs.Models.Count; i++)
            {
                double w = inputs.ModelParameters[i].Number("weight", 1);
                sum = sum + (inputs.Models[i] - b) * w;
                total += w;
            }
            if (inputs.Global.Bool("normalize", false)) sum = sum / total;
            return b + sum * inputs.Global.Number("lambda", 1.0);
        }
    }

    /// <summary>A DARE-like random mask: θ0 + Σ mᵢ·δᵢ with mᵢ ~ Bernoulli(density) from the executor's generator; has a choice parameter.</summary>
    public sealed class RandomMask : IMergeMethod
    {
        public string Name => "random_mask";
        public string Description => "random masks (test)";
        public IReadOnlyList<ParameterSpec> Parameters { get; } =
        [
            new("density", ParameterScope.PerModel, ParameterKind.Number, 0.5, "keep fraction"),
            new("mode", ParameterScope.Global, ParameterKind.Choice, "sum", "how to combine", ["sum", "mean"]),
            new("epsilon", ParameterScope.Global, ParameterKind.Number, null, "required global (test)"),
        ];
        public BaseModelUse BaseModel => BaseModelUse.Required;
        public bool IsRandomized => true;
        public Tensor Merge(MergeTensorInputs inputs)
        {
            var b = inputs.Base!;
            Tensor sum = zeros_like(b);
            for (int i = 0; i < inputs.Models.Count; i++)
            {
                var keep = rand(b.shape, generator: inputs.Random, dtype: b.dtype) < inputs.ModelParameters[i].Number("density", 0.5);
                sum = sum + (inputs.Models[i] - b) * keep;
            }
            return b + sum;
        }
    }

    /// <summary>Returns NaN for one tensor: the executor must refuse and leave no output.</summary>
    public sealed class NaNAt(string tensor) : IMergeMethod
    {
        public string Name => "nan_at";
        public string Description => "NaN on one tensor (test)";
        public IReadOnlyList<ParameterSpec> Parameters { get; } = [];
        public BaseModelUse BaseModel => BaseModelUse.Required;
        public bool IsRandomized => false;
        public Tensor Merge(MergeTensorInputs inputs) => inputs.Name == tensor ? full_like(inputs.Base!, double.NaN) : inputs.Base!.clone();
    }

    /// <summary>
    /// Uses a whole-model statistic: two rounds over every tensor (count, then the largest |δ|), then θ0 + δ/max|δ|.
    /// </summary>
    public sealed class GlobalScale : IMergeMethod
    {
        public string Name => "global_scale";
        public string Description => "whole-model pass (test)";
        public IReadOnlyList<ParameterSpec> Parameters { get; } = [];
        public BaseModelUse BaseModel => BaseModelUse.Required;
        public bool IsRandomized => false;
        public Pass? Last { get; private set; }
        public IWholeModelPass? CreatePass(MergeParameters global, int models) => Last = new Pass();
        public Tensor Merge(MergeTensorInputs inputs)
        {
            var pass = (Pass)inputs.Pass!;
            return inputs.Base! + (inputs.Models[0] - inputs.Base!) / pass.MaxAbs;
        }

        public sealed class Pass : IWholeModelPass
        {
            public int Rounds => 2;
            public int Observed0, Observed1, Ended;
            public double MaxAbs;
            public void Observe(int round, MergeTensorInputs inputs)
            {
                if (round == 0) { Observed0++; return; }
                Observed1++;
                MaxAbs = Math.Max(MaxAbs, (inputs.Models[0] - inputs.Base!).abs().max().item<float>());
            }
            public void EndRound(int round) => Ended++;
        }
    }

    public static readonly GlobalScale GlobalScaleInstance = new();

    public static IMergeMethod Get(string name) => name switch
    {
        "global_scale" => GlobalScaleInstance,
        "linear" => new Linear(),
        "task_arithmetic" => new TaskArithmetic(),
        "random_mask" => new RandomMask(),
        _ when name.StartsWith("nan_at:") => new NaNAt(name["nan_at:".Length..]),
        _ => throw new InvalidDataException($"merge_method: unknown method '{name}'; known: linear, random_mask, task_arithmetic"),
    };
}
