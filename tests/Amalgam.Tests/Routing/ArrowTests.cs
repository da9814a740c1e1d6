using Amalgam.Experts;
using Amalgam.Mixing;
using Amalgam.Models;
using Amalgam.Routing;
using TorchSharp;
using static TorchSharp.torch;

namespace Amalgam.Tests.Routing;

public class ArrowTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    [InlineData(8)]
    public void The_prototype_is_the_top_right_singular_vector_of_the_dense_update(int rank)
    {
        for (int seed = 0; seed < 5; seed++)
        {
            using var scope = NewDisposeScope();
            var g = new Generator((ulong)(rank * 100 + seed));
            var delta = new LowRankDelta(randn(new long[] { rank, 24 }, generator: g), randn(new long[] { 16, rank }, generator: g), 0.75);
            var v = ArrowPrototypes.TopRightSingularVector(delta).to(ScalarType.Float64);
            var (_, _, vh) = linalg.svd(delta.Dense(ScalarType.Float64), fullMatrices: false);
            double cos = (v.dot(vh[0]) / (v.norm() * vh[0].norm())).abs().item<double>();
            Assert.True(cos > 1 - 1e-5, $"rank {rank} seed {seed}: |cos| = {cos}");
            Assert.Equal(1.0, v.norm().item<double>(), 1e-5);
            // Sign: the entry of largest magnitude is positive.
            Assert.True(v[v.abs().argmax()].item<double>() > 0);
        }
    }

    /// <summary>Rank-1 experts whose update on a module reads input coordinate k: the prototype is the unit vector eₖ.</summary>
    static LoraAdapter Axis(string name, IReadOnlyDictionary<string, int> axisOfModule)
    {
        var config = new LoraConfig { R = 1, LoraAlpha = 1 };
        var factors = axisOfModule.ToDictionary(m => m.Key, m =>
        {
            var a = zeros(1, 4);
            a[0, m.Value] = tensor(m.Value % 2 == 0 ? 2f : -2f); // either sign: normalised to +eₖ
            return (a, tensor(new float[] { 1, 0.5f }).reshape(2, 1));
        });
        return new LoraAdapter(name, config, factors);
    }

    static List<LoraAdapter> HandExperts() =>
    [
        Axis("e0", new Dictionary<string, int> { ["m1"] = 0, ["m2"] = 0 }),
        Axis("e1", new Dictionary<string, int> { ["m1"] = 1 }),
        Axis("e2", new Dictionary<string, int> { ["m1"] = 2, ["m2"] = 2 }),
        Axis("e3", new Dictionary<string, int> { ["m1"] = 3 }),
    ];

    static double[] Softmax(params double[] z) { var e = z.Select(Math.Exp).ToArray(); return e.Select(v => v / e.Sum()).ToArray(); }

    [Fact]
    public void Prototypes_list_each_module_with_its_adapting_experts()
    {
        var experts = HandExperts();
        using var prototypes = ArrowPrototypes.Build(experts);
        Assert.Equal(new[] { "e0", "e1", "e2", "e3" }, prototypes.Experts);
        Assert.Equal(new[] { "m1", "m2" }, prototypes.Modules.Keys);
        Assert.True(prototypes.Modules["m1"].Vectors.equal(eye(4)).all().item<bool>());
        Assert.Equal(new[] { true, false, true, false }, prototypes.Modules["m2"].Adapts.data<bool>().ToArray());
        var m2 = prototypes.Modules["m2"].Vectors.data<float>().ToArray();
        Assert.Equal(new float[] { 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0 }, m2);
        foreach (var e in experts) e.Dispose();
    }

    [Fact]
    public void Weights_are_a_softmax_over_the_top_k_absolute_projections()
    {
        var experts = HandExperts();
        using var prototypes = ArrowPrototypes.Build(experts);
        using var scope = NewDisposeScope();
        var x = tensor(new float[] { 1, -3, 2, 0.5f, 0.5f, 0.25f, -1, -4 }, [1, 2, 4]);

        var arrow = new ArrowRouting(prototypes); // k = 3, T = 1
        var w = arrow.Weights("m1", x);
        Assert.Equal(new long[] { 1, 2, 4 }, w.shape);
        var got = w.to(ScalarType.Float64).data<double>().ToArray();
        var t0 = Softmax(3, 2, 1);       // token 0: |x| = [1, 3, 2, 0.5] → experts 1, 2, 0
        var t1 = Softmax(4, 1, 0.5);     // token 1: |x| = [0.5, 0.25, 1, 4] → experts 3, 2, 0
        double[] expected = [t0[2], t0[0], t0[1], 0, t1[2], 0, t1[1], t1[0]];
        for (int i = 0; i < 8; i++) Assert.Equal(expected[i], got[i], 1e-6);

        // m2 is adapted by e0 and e2 only: k is cut to 2 and the others get exactly 0.
        var w2 = arrow.Weights("m2", x).to(ScalarType.Float64).data<double>().ToArray();
        var u0 = Softmax(1, 2);
        var u1 = Softmax(0.5, 1);
        double[] expected2 = [u0[0], 0, u0[1], 0, u1[0], 0, u1[1], 0];
        for (int i = 0; i < 8; i++) Assert.Equal(expected2[i], w2[i], 1e-6);

        // Temperature 2, k = 2.
        var w3 = new ArrowRouting(prototypes, topK: 2, temperature: 2).Weights("m1", x).to(ScalarType.Float64).data<double>().ToArray();
        var v0 = Softmax(1.5, 1);
        Assert.Equal(v0[0], w3[1], 1e-6);
        Assert.Equal(v0[1], w3[2], 1e-6);
        Assert.Equal(0, w3[0]);
        Assert.Equal(0, w3[3]);
        foreach (var e in experts) e.Dispose();
    }

    [Fact]
    public void Random_inputs_get_rows_summing_to_one_with_exactly_k_nonzeros_in_a_new_tensor_per_call()
    {
        using var scope = NewDisposeScope();
        var g = new Generator(9);
        var experts = Enumerable.Range(0, 6).Select(k => new LoraAdapter($"r{k}", new LoraConfig { R = 4, LoraAlpha = 8 },
            new Dictionary<string, (Tensor, Tensor)> { ["m"] = (randn(new long[] { 4, 32 }, generator: g), randn(new long[] { 8, 4 }, generator: g)) })).ToList();
        using var prototypes = ArrowPrototypes.Build(experts);
        var arrow = new ArrowRouting(prototypes);
        var x = randn(new long[] { 3, 5, 32 }, generator: g);
        var first = arrow.Weights("m", x);
        var copy = first.clone();
        var second = arrow.Weights("m", x);
        Assert.False(ReferenceEquals(first, second));
        Assert.True(first.equal(copy).all().item<bool>());
        Assert.True((first.sum(-1) - 1).abs().max().item<float>() < 1e-6);
        Assert.True((first != 0).sum(-1).eq(3).all().all().item<bool>());
        Assert.Throws<ArgumentException>(() => arrow.Weights("other", x));
        foreach (var e in experts) e.Dispose();
    }

    [Fact]
    public void Identical_experts_routed_by_Arrow_equal_the_adapter_alone_on_the_golden_model()
    {
        // Whatever Arrow picks, weights summing to 1 over identical experts give the adapter's own update.
        using var model = CheckpointLoader.Load(TestData.Golden("llama_gqa"));
        var experts = Enumerable.Range(0, 3).Select(_ => LoraAdapter.Load(TestData.Golden("llama_gqa.lora_all"), model)).ToList();
        using var prototypes = ArrowPrototypes.Build(experts);
        using var library = new ExpertLibrary(model, experts);
        var c = TestData.Case("llama_gqa+lora_all");
        using var inference = inference_mode();
        using var scope = NewDisposeScope();
        var seq = c.Sequences[2];
        var logits = model.forward(new DecoderInput(tensor(seq).unsqueeze(0), Mixing: new ArrowRouting(prototypes, topK: 2))).Logits[0];
        var expected = tensor(c.Logits[2].SelectMany(r => r).ToArray(), [seq.Length, c.Logits[2][0].Length]);
        double diff = (logits - expected).abs().max().item<float>();
        Assert.True(diff <= 1e-4, $"max |Δlogit| = {diff}");
        foreach (var e in experts) e.Dispose();
    }

    /// <summary>Arrow computed independently: prototypes from a float64 SVD of each dense s·B·A, weights per token in float64.</summary>
    sealed class DenseArrowReference(IReadOnlyList<LoraAdapter> experts, int topK) : IMixingPolicy
    {
        public Tensor Weights(string module, Tensor x)
        {
            using var scope = NewDisposeScope();
            var deltas = experts.Select(e => e.Deltas.GetValueOrDefault(module)).ToList();
            var v = stack(deltas.Select(d => d is null ? zeros(new long[] { x.shape[2] }, ScalarType.Float64) : linalg.svd(d.Dense(ScalarType.Float64), fullMatrices: false).Vh[0]).ToArray());
            var logits = x.to(ScalarType.Float64).matmul(v.T).abs();
            var absent = tensor(deltas.Select(d => d is null).ToArray());
            logits = logits.masked_fill(absent, double.NegativeInfinity);
            int k = Math.Min(topK, deltas.Count(d => d is not null));
            var kth = logits.topk(k, dim: -1).values.narrow(-1, k - 1, 1);
            var weights = nn.functional.softmax(logits.masked_fill(logits < kth, double.NegativeInfinity), -1);
            return weights.to(ScalarType.Float32).MoveToOuterDisposeScope();
        }
    }

    [Fact]
    public void Arrow_through_the_expert_library_matches_a_dense_float64_reference_on_the_golden_model()
    {
        using var model = CheckpointLoader.Load(TestData.Golden("llama_gqa"));
        var experts = new[] { "llama_gqa.lora_qv", "llama_gqa.lora_all", "llama_gqa.lora_rslora" }.Select(a => LoraAdapter.Load(TestData.Golden(a), model)).ToList();
        using var prototypes = ArrowPrototypes.Build(experts);
        using var library = new ExpertLibrary(model, experts);
        using var inference = inference_mode();
        foreach (var seq in TestData.Case("llama_gqa").Sequences)
        {
            using var scope = NewDisposeScope();
            var ids = tensor(seq).unsqueeze(0);
            var arrow = model.forward(new DecoderInput(ids, Mixing: new ArrowRouting(prototypes, topK: 2))).Logits;
            var reference = model.forward(new DecoderInput(ids, Mixing: new DenseArrowReference(experts, 2))).Logits;
            using var uniform = new FixedMixing(full(new long[] { 1, 3 }, 1f / 3));
            var dense = model.forward(new DecoderInput(ids, Mixing: uniform)).Logits;
            double diff = (arrow - reference).abs().max().item<float>();
            Assert.True(diff <= 1e-4, $"max |Δlogit| = {diff}");
            Assert.True((arrow - dense).abs().max().item<float>() > 1e-3); // routing changes the output
        }
        foreach (var e in experts) e.Dispose();
    }

    [Fact]
    public void Routing_leaves_no_live_tensors_behind()
    {
        static long Live() => DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        void Unchanged(string what, Action action)
        {
            long before = Live();
            action();
            Assert.True(before == Live(), $"{what}: {Live() - before} tensors left alive");
        }
        var experts = HandExperts();
        using var prototypes = ArrowPrototypes.Build(experts);
        var arrow = new ArrowRouting(prototypes);
        using var x = randn(2, 3, 4);
        using var p = tensor(new float[] { 0.2f, 0.5f, 0.3f }, [1, 3]);
        var (train, _, _) = SyntheticClusters.Draw(0, experts: 2, trainPerExpert: 8, testPerExpert: 1);
        arrow.Weights("m1", x).Dispose(); // warm-up
        Unchanged("Arrow weights", () => { arrow.Weights("m1", x).Dispose(); arrow.Weights("m2", x).Dispose(); });
        Unchanged("Arrow prototypes", () => ArrowPrototypes.Build(experts).Dispose());
        Unchanged("Arrow routing", () => new ArrowRouting(prototypes, topK: 2));
        Unchanged("selection", () => { RouteSelection.TopK(p, 2).Dispose(); RouteSelection.Argmax(p).Dispose(); });
        Unchanged("learned router", () =>
        {
            var (router, _) = LearnedRouter.Train(train.Features, train.Labels, ["a", "b"], new() { Steps = 3 });
            router.Probabilities(train.Features).Dispose();
            router.Dispose();
        });
        Unchanged("centroid router", () =>
        {
            using var centroid = CentroidRouter.Build(train.Features, train.Labels, ["a", "b"]);
            centroid.Probabilities(train.Features).Dispose();
        });
        using var dir = new TestData.TempDir();
        using (var centroid = CentroidRouter.Build(train.Features, train.Labels, ["a", "b"])) centroid.Save(dir["c"]);
        var (saved, _) = LearnedRouter.Train(train.Features, train.Labels, ["a", "b"], new() { Steps = 1 });
        saved.Save(dir["l"]);
        saved.Dispose();
        Unchanged("loading", () => { ((IDisposable)RouterFiles.Load(dir["c"])).Dispose(); ((IDisposable)RouterFiles.Load(dir["l"])).Dispose(); });
        foreach (var e in experts) e.Dispose();
    }
}
