using System.Text.Json;
using Amalgam.Merging;
using Amalgam.Merging.Methods;
using TorchSharp;
using static TorchSharp.torch;

namespace Amalgam.Tests.Merging.Methods;

/// <summary>The cases written by tests/Golden/merging/generate.py (an independent float64 PyTorch implementation).</summary>
public static class MergeGoldens
{
    public sealed record TensorCase(string Name, long[] Shape, double[] Base, double[][] Models, double[]?[]? Masks, double[] Expected, long[]? Kept);

    public sealed record Case(string Name, string Method, MergeParameters Global, IReadOnlyList<MergeParameters> PerModel, IReadOnlyList<TensorCase> Tensors)
    {
        /// <summary>The models' names (cabs orders by them), the base's name, and whether the method runs without a base.</summary>
        public IReadOnlyList<string>? Names { get; init; }
        public string? BaseName { get; init; }
        public bool NoBase { get; init; }
    }

    static readonly Lazy<IReadOnlyList<Case>> cases = new(Load);

    public static IReadOnlyList<Case> All => cases.Value;

    public static Case Get(string name) => All.Single(c => c.Name == name);

    public static string File => Path.Combine(TestData.RepoRoot, "tests", "Golden", "merging", "cases.json");

    static object Value(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Number => e.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.String => e.GetString()!,
        JsonValueKind.Array => e.EnumerateArray().Select(x => x.GetString()!).ToList(),
        _ => throw new InvalidDataException($"unexpected {e.ValueKind}"),
    };

    public static MergeParameters Params(JsonElement obj) =>
        new(obj.EnumerateObject().ToDictionary(p => p.Name, p => Value(p.Value)));

    static IReadOnlyList<Case> Load()
    {
        using var doc = JsonDocument.Parse(System.IO.File.ReadAllText(File));
        return doc.RootElement.GetProperty("cases").EnumerateArray().Select(c => new Case(
            c.GetProperty("name").GetString()!,
            c.GetProperty("method").GetString()!,
            Params(c.GetProperty("global")),
            c.GetProperty("per_model").EnumerateArray().Select(Params).ToList(),
            c.GetProperty("tensors").EnumerateArray().Select(t => new TensorCase(
                t.GetProperty("name").GetString()!,
                t.GetProperty("shape").Deserialize<long[]>()!,
                t.GetProperty("base").Deserialize<double[]>()!,
                t.GetProperty("models").Deserialize<double[][]>()!,
                t.TryGetProperty("masks", out var m) ? m.Deserialize<double[]?[]>() : null,
                t.GetProperty("expected").Deserialize<double[]>()!,
                t.TryGetProperty("kept", out var k) ? k.Deserialize<long[]>() : null)).ToList())
        {
            Names = c.TryGetProperty("names", out var n) ? n.Deserialize<string[]>() : null,
            BaseName = c.TryGetProperty("base_name", out var b) ? b.GetString() : null,
            NoBase = c.TryGetProperty("no_base", out var nb) && nb.GetBoolean(),
        }).ToList();
    }

    public static Tensor T(double[] values, long[] shape, ScalarType dtype) => tensor(values, dtype: ScalarType.Float64).reshape(shape).to(dtype);

    public static MergeTensorInputs Inputs(Case c, TensorCase t, ScalarType dtype, IWholeModelPass? pass = null, Generator? random = null) =>
        new(t.Name, c.NoBase ? null : T(t.Base, t.Shape, dtype), t.Models.Select(m => T(m, t.Shape, dtype)).ToList(), c.PerModel, c.Global, random, pass)
        { ModelNames = c.Names, BaseName = c.BaseName };

    /// <summary>Runs a case the way the executor would: whole-model rounds first when the method asks for them,
    /// then one Merge per tensor (with the generator's masks injected for randomised methods).</summary>
    public static (List<double[]> Results, IWholeModelPass? Pass) Run(Case c, ScalarType dtype)
    {
        var method = MergeMethods.Get(c.Method);
        var pass = method.CreatePass(c.Global, c.PerModel.Count);
        if (pass is not null)
            for (int r = 0; r < pass.Rounds; r++)
            {
                foreach (var t in c.Tensors)
                {
                    using var scope = NewDisposeScope();
                    pass.Observe(r, Inputs(c, t, dtype));
                }
                pass.EndRound(r);
            }
        var results = new List<double[]>();
        foreach (var t in c.Tensors)
        {
            using var scope = NewDisposeScope();
            var inputs = Inputs(c, t, dtype, pass);
            Tensor merged;
            if (t.Masks is not null)
            {
                var masks = t.Masks.Select(m => m is null ? ones(t.Shape, dtype: dtype) : T(m, t.Shape, dtype)).ToList();
                merged = ((TaskVectorMethod)method).Merge(inputs, masks);
            }
            else merged = method.Merge(inputs);
            Assert.Equal(dtype, merged.dtype);
            Assert.Equal(t.Shape, merged.shape);
            results.Add(merged.to(ScalarType.Float64).data<double>().ToArray());
        }
        return (results, pass);
    }

    public static void Close(double[] expected, double[] actual, double tol, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            if (!(Math.Abs(expected[i] - actual[i]) <= tol * Math.Max(1.0, Math.Abs(expected[i]))))
                Assert.Fail($"{what}[{i}]: expected {expected[i]:R}, got {actual[i]:R} (tolerance {tol})");
    }
}
