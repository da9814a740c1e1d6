using Amalgam.Models;
using Amalgam.Tests.Tensors;
using TorchSharp;
using static TorchSharp.torch;

namespace Amalgam.Tests.Models;

/// <summary>Rows joining and leaving a cache give each sequence the logits it gets alone, and leak nothing.</summary>
[Collection(nameof(TensorCountCollection))]
public sealed class KvCacheRowsTests
{
    static readonly long[] A = [2, 10, 11, 12, 13, 14, 15], B = [2, 20, 21];

    static Tensor Forward(CausalLM model, KvCache cache, long[] ids, int rows)
    {
        int width = ids.Length / rows;
        return model.forward(new DecoderInput(tensor(ids, [rows, width]), ones(rows, width, ScalarType.Int64), cache, true)).Logits.select(1, 0);
    }

    [Fact]
    public void JoinedAndSelectedRowsDecodeAsTheirSequencesAlone()
    {
        using var model = CheckpointLoader.Load(Path.Combine(TestData.RepoRoot, "suite", "base"));
        using var _ = inference_mode();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long before = Tensor.TotalCount;
        using (var scope = NewDisposeScope())
        {
            // Alone: each prompt, then two more tokens.
            using var ca = new KvCache(model.Config.NumHiddenLayers);
            using var cb = new KvCache(model.Config.NumHiddenLayers);
            Forward(model, ca, A, 1);
            Forward(model, cb, B, 1);
            var a1 = Forward(model, ca, [30], 1);
            var b1 = Forward(model, cb, [31], 1);
            var b2 = Forward(model, cb, [32], 1);

            // Joined: prefilled apart, B left-padded into A's length, one step together, then B alone again.
            using var pa = new KvCache(model.Config.NumHiddenLayers);
            using var pb = new KvCache(model.Config.NumHiddenLayers);
            Forward(model, pa, A, 1);
            Forward(model, pb, B, 1);
            using var joined = KvCache.Concat(pa, pb);
            Assert.Equal(2, joined.Rows);
            Assert.Equal(A.Length, joined.Length);
            Assert.Equal(new long[] { 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1 }, joined.Mask!.data<long>().ToArray());
            var both = Forward(model, joined, [30, 31], 2);
            Assert.True(both[0].allclose(a1, rtol: 0, atol: 1e-5));
            Assert.True(both[1].allclose(b1, rtol: 0, atol: 1e-5));

            using var onlyB = joined.SelectRows([1]);
            Assert.Equal(1, onlyB.Rows);
            Assert.Equal(B.Length + 1, onlyB.Length);   // the padding columns left with A
            var alone = Forward(model, onlyB, [32], 1);
            Assert.True(alone.allclose(b2, rtol: 0, atol: 1e-5));

            using var empty = joined.SelectRows([]);
            Assert.Equal(0, empty.Rows);
            using var again = KvCache.Concat(empty, onlyB);
            Assert.Equal(onlyB.Length, again.Length);
        }
        GC.Collect();
        GC.WaitForPendingFinalizers();
        Assert.Equal(before, Tensor.TotalCount);
    }
}
