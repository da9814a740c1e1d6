using System.Text.Json;
using Amalgam.Merging.Execution;
using Amalgam.Tensors;
using static Amalgam.Tests.Merging.MergeFixtures;
using static TorchSharp.torch;

namespace Amalgam.Tests.Merging;

public class StreamingMergeTests
{
    static string Yaml(string method, string baseDir, string[] models, string modelParams, string extra = "") =>
        $"merge_method: {method}\nbase_model: {baseDir}\nmodels:\n" +
        string.Concat(models.Select((m, i) => $"  - model: {m}\n    parameters: {{{modelParams.Split('|')[Math.Min(i, modelParams.Split('|').Length - 1)]}}}\n")) + extra;

    [Fact]
    public void Linear_merge_equals_the_hand_computation_per_tensor_and_the_folder_is_complete()
    {
        using var dir = new TestData.TempDir();
        string a = Perturbed(dir, "a", 1), b = Perturbed(dir, "b", 2);
        string outDir = dir["out"];
        var summary = Merge(Yaml("linear", TestData.Golden(Base), [a, b], "weight: 0.3|weight: 0.7"), outDir);

        var ta = ReadAll(a); var tb = ReadAll(b); var merged = ReadAll(outDir);
        try
        {
            Assert.Equal(ta.Keys.Order(), merged.Keys.Order());
            foreach (var (name, m) in merged)
            {
                using var expected = (ta[name] * 0.3 + tb[name] * 0.7) / 1.0;
                Assert.True(m.allclose(expected, rtol: 1e-6, atol: 1e-6), name);
            }
        }
        finally { MergeFixtures.Dispose(ta); MergeFixtures.Dispose(tb); MergeFixtures.Dispose(merged); }
        Assert.Equal(ta.Count, summary.TensorsMerged);

        foreach (var f in new[] { "model.safetensors", "config.json", "tokenizer.amalgam.json", "merge_recipe.yaml", "README.md" })
            Assert.True(File.Exists(Path.Combine(outDir, f)), f);
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "config.json")));
        Assert.Equal("float32", config.RootElement.GetProperty("torch_dtype").GetString());
        Assert.Contains("merge_method: linear", File.ReadAllText(Path.Combine(outDir, "merge_recipe.yaml")));
        string readme = File.ReadAllText(Path.Combine(outDir, "README.md"));
        Assert.Contains("`linear`", readme);
        Assert.Contains(a, readme);
        Assert.Contains("Amalgam", readme);
        Assert.Empty(Directory.GetDirectories(dir.Path, ".*")); // no staging folder left behind
    }

    [Fact]
    public void Task_arithmetic_with_a_gradient_writes_the_out_dtype_and_the_merged_model_loads()
    {
        using var dir = new TestData.TempDir();
        string a = Perturbed(dir, "a", 3), b = Perturbed(dir, "b", 4);
        string baseDir = TestData.Golden(Base), outDir = dir["out"];
        Merge(Yaml("task_arithmetic", baseDir, [a, b], "weight: 1|weight: 0.5", "parameters:\n  lambda: [0.5, 2]\nout_dtype: bfloat16\n"), outDir);

        using var baseStore = TensorStore.Open(baseDir);
        foreach (var (name, lambda) in new[] { ("model.layers.0.mlp.up_proj.weight", 0.5), ("model.layers.1.mlp.up_proj.weight", 2.0), ("lm_head.weight", 0.5), ("model.norm.weight", 0.5) })
        {
            using var scope = NewDisposeScope();
            var t0 = baseStore.Load(name);
            var expected = t0 + ((Load(a, name) - t0) * 1.0 + (Load(b, name) - t0) * 0.5) * lambda;
            var got = Load(outDir, name);
            Assert.Equal(ScalarType.BFloat16, got.dtype);
            Assert.True(got.equal(expected.to(ScalarType.BFloat16)).all().item<bool>(), name);
        }
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "config.json")));
        Assert.Equal("bfloat16", config.RootElement.GetProperty("torch_dtype").GetString());
        using var model = Amalgam.Models.CheckpointLoader.Load(outDir);
        using var logits = model.Logits([1, 2, 3]);
        Assert.True(isfinite(logits).all().all().item<bool>());
    }

    [Fact]
    public void A_tiny_shard_size_gives_a_sharded_checkpoint_that_reads_back_identical()
    {
        using var dir = new TestData.TempDir();
        string a = Perturbed(dir, "a", 5), b = Perturbed(dir, "b", 6);
        string yaml = Yaml("linear", TestData.Golden(Base), [a, b], "weight: 1|weight: 2");
        Merge(yaml, dir["single"]);
        Merge(yaml + "out_shard_size: 20000\n", dir["sharded"]);
        Assert.True(File.Exists(Path.Combine(dir["sharded"], CheckpointFileNames.Index())));
        Assert.True(Directory.GetFiles(dir["sharded"], "model-*-of-*.safetensors").Length > 2);
        var one = ReadAll(dir["single"]); var many = ReadAll(dir["sharded"]);
        try
        {
            Assert.Equal(one.Keys.Order(), many.Keys.Order());
            foreach (var (n, t) in one) Assert.True(t.equal(many[n]).all().item<bool>(), n);
        }
        finally { MergeFixtures.Dispose(one); MergeFixtures.Dispose(many); }
    }

    [Fact]
    public void Random_methods_are_stable_for_a_seed_and_independent_of_tensor_order()
    {
        using var dir = new TestData.TempDir();
        string a = Perturbed(dir, "a", 7), b = Perturbed(dir, "b", 8);
        string yaml = Yaml("random_mask", TestData.Golden(Base), [a, b], "density: 0.5", "parameters: {epsilon: 0}\n");
        Merge(yaml + "random_seed: 11\n", dir["first"]);
        Merge(yaml + "random_seed: 11\n", dir["again"]);
        Merge(yaml + "random_seed: 11\n", dir["reversed"], new MergeRunOptions { Order = names => names.Reverse().ToList() });
        Merge(yaml + "random_seed: 12\n", dir["other"]);
        var first = ReadAll(dir["first"]); var again = ReadAll(dir["again"]); var reversed = ReadAll(dir["reversed"]); var other = ReadAll(dir["other"]);
        try
        {
            foreach (var (n, t) in first)
            {
                Assert.True(t.equal(again[n]).all().item<bool>(), n);
                Assert.True(t.equal(reversed[n]).all().item<bool>(), n);
            }
            Assert.Contains(first.Keys, n => !first[n].equal(other[n]).all().item<bool>());
        }
        finally { foreach (var d in new[] { first, again, reversed, other }) MergeFixtures.Dispose(d); }
    }

    [Fact]
    public void NaN_is_refused_naming_the_tensor_and_leaves_no_output_folder()
    {
        using var dir = new TestData.TempDir();
        string a = Perturbed(dir, "a", 9);
        string outDir = dir["out"];
        var e = Assert.Throws<InvalidDataException>(() =>
            Merge($"merge_method: nan_at:model.norm.weight\nbase_model: {TestData.Golden(Base)}\nmodels: [{a}]\n", outDir));
        Assert.Contains("tensor 'model.norm.weight'", e.Message);
        Assert.Contains("NaN", e.Message);
        Assert.False(Directory.Exists(outDir));
        Assert.Empty(Directory.GetDirectories(dir.Path, ".*"));
    }

    [Fact]
    public void A_shape_mismatch_names_the_tensor_and_both_models()
    {
        using var dir = new TestData.TempDir();
        string a = Perturbed(dir, "a", 10, (n, t) => n == "model.layers.1.mlp.up_proj.weight" ? t.narrow(0, 0, 40) : t);
        var e = Assert.Throws<InvalidDataException>(() => Merge(Yaml("linear", TestData.Golden(Base), [a], "weight: 1"), dir["out"]));
        Assert.Contains("tensor 'model.layers.1.mlp.up_proj.weight'", e.Message);
        Assert.Contains("models[0]", e.Message);
        Assert.Contains("base_model", e.Message);
        Assert.False(Directory.Exists(dir["out"]));
    }

    [Fact]
    public void Embeddings_of_different_vocab_sizes_merge_their_common_rows_and_say_so()
    {
        using var dir = new TestData.TempDir();
        string a = Perturbed(dir, "a", 11, (n, t) => n is "model.embed_tokens.weight" or "lm_head.weight" ? t.narrow(0, 0, 60).contiguous() : t);
        string b = Perturbed(dir, "b", 12);
        string outDir = dir["out"];
        var summary = Merge(Yaml("linear", TestData.Golden(Base), [a, b], "weight: 1"), outDir);
        Assert.Contains(summary.Notes, n => n.Contains("'model.embed_tokens.weight'") && n.Contains("60 rows"));
        using var scope = NewDisposeScope();
        var got = Load(outDir, "lm_head.weight");
        Assert.Equal([60L, 32L], got.shape);
        Assert.True(got.allclose((Load(a, "lm_head.weight") + Load(b, "lm_head.weight").narrow(0, 0, 60)) / 2, rtol: 1e-6, atol: 1e-6));
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "config.json")));
        Assert.Equal(60, config.RootElement.GetProperty("vocab_size").GetInt32());
        Assert.Contains("60 rows", File.ReadAllText(Path.Combine(outDir, "README.md")));
    }

    [Fact]
    public void Whole_model_passes_see_every_tensor_in_every_round_before_merging()
    {
        using var dir = new TestData.TempDir();
        string a = Perturbed(dir, "a", 13);
        Merge($"merge_method: global_scale\nbase_model: {TestData.Golden(Base)}\nmodels: [{a}]\n", dir["out"]);
        var pass = TestMethods.GlobalScaleInstance.Last!;
        using var store = TensorStore.Open(TestData.Golden(Base));
        Assert.Equal(store.Names.Count, pass.Observed0);
        Assert.Equal(store.Names.Count, pass.Observed1);
        Assert.Equal(2, pass.Ended);
        using var scope = NewDisposeScope();
        const string name = "model.layers.0.mlp.up_proj.weight";
        var t0 = store.Load(name);
        Assert.True(Load(dir["out"], name).allclose(t0 + (Load(a, name) - t0) / pass.MaxAbs, rtol: 1e-6, atol: 1e-6));
    }
}
