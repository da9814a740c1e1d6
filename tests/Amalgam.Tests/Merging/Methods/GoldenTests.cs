using Amalgam.Merging.Parts;
using TorchSharp;
using static TorchSharp.torch;

namespace Amalgam.Tests.Merging.Methods;

/// <summary>Every method against the independent PyTorch goldens, in float64 (1e-9) and float32 (1e-5).</summary>
public class GoldenTests
{
    public static TheoryData<string, string> Cases()
    {
        var d = new TheoryData<string, string>();
        foreach (var c in MergeGoldens.All) { d.Add(c.Name, "float64"); d.Add(c.Name, "float32"); }
        return d;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesGolden(string name, string dtype)
    {
        var c = MergeGoldens.Get(name);
        var type = dtype == "float64" ? ScalarType.Float64 : ScalarType.Float32;
        double tol = type == ScalarType.Float64 ? 1e-9 : 1e-5;
        var (results, pass) = MergeGoldens.Run(c, type);
        for (int i = 0; i < c.Tensors.Count; i++)
            MergeGoldens.Close(c.Tensors[i].Expected, results[i], tol, $"{name} {c.Tensors[i].Name}");

        if (c.Tensors.Any(t => t.Kept is not null))
        {
            // whole-model top-k: the kept counts per tensor match the reference, and add up to int(d × total numel)
            var topk = Assert.IsType<WholeModelTopK>(pass);
            long total = c.Tensors.Sum(t => t.Base.Length);
            for (int m = 0; m < c.PerModel.Count; m++)
            {
                long sum = 0;
                foreach (var t in c.Tensors)
                {
                    using var scope = NewDisposeScope();
                    var delta = MergeGoldens.T(t.Models[m], t.Shape, type) - MergeGoldens.T(t.Base, t.Shape, type);
                    long kept = (long)topk.Mask(t.Name, m, delta).sum().ToDouble();
                    Assert.Equal(t.Kept![m], kept);
                    sum += kept;
                }
                Assert.Equal(Sparsifiers.KeepCount(c.PerModel[m].Number("density", 1), total), sum);
            }
        }
    }

    [Fact]
    public void GoldenFileIsSmallAndCoversEveryMethod()
    {
        Assert.True(new FileInfo(MergeGoldens.File).Length < 1_000_000);
        var covered = MergeGoldens.All.Select(c => c.Method).ToHashSet();
        foreach (var m in Amalgam.Merging.MergeMethods.All.Keys) Assert.Contains(m, covered);
        foreach (var flavor in new[] { "peft", "fusion_bench" })
            Assert.Contains(MergeGoldens.All, c => c.Global.Values.TryGetValue("flavor", out var f) && (string)f == flavor);
    }
}
