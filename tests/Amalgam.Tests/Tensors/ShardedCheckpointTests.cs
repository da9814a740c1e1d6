using System.Text.Json;
using Amalgam.Tensors;
using TorchSharp;

namespace Amalgam.Tests.Tensors;

public class ShardedCheckpointTests
{
    // Five F32 tensors of 40, 40, 24, 80 and 8 bytes.
    private static readonly TensorSpec[] Specs =
    [
        new("embed.weight", DType.F32, [2, 5]),
        new("layers.0.weight", DType.F32, [10]),
        new("layers.0.bias", DType.F32, [6]),
        new("layers.1.weight", DType.F32, [4, 5]),
        new("norm.weight", DType.F32, [2]),
    ];

    private static torch.Tensor Values(TensorSpec spec, int seed) =>
        (torch.arange(spec.NumElements, dtype: torch.ScalarType.Float32) + seed * 100).reshape(spec.Shape);

    private static void WriteAll(string folder, long maxShardBytes, string baseName = CheckpointFileNames.Model)
    {
        using var scope = torch.NewDisposeScope();
        using var writer = new ShardedCheckpointWriter(folder, Specs, maxShardBytes, new Dictionary<string, string> { ["format"] = "pt" }, baseName);
        for (int i = 0; i < Specs.Length; i++) writer.Write(Specs[i].Name, Values(Specs[i], i));
        writer.Commit();
    }

    private static void AssertHoldsAll(TensorStore store)
    {
        using var scope = torch.NewDisposeScope();
        Assert.Equal(Specs.Select(s => s.Name).Order(StringComparer.Ordinal), store.Names.Order(StringComparer.Ordinal));
        for (int i = 0; i < Specs.Length; i++)
        {
            var loaded = store.Load(Specs[i].Name);
            Assert.Equal(Specs[i].Shape, loaded.shape);
            Assert.Equal(Values(Specs[i], i).data<float>().ToArray(), loaded.data<float>().ToArray());
            Assert.Equal(DType.F32, store.Info(Specs[i].Name).DType);
        }
    }

    [Fact]
    public void Everything_fitting_one_shard_is_a_single_file_without_index()
    {
        using var dir = new TempFolder();
        WriteAll(dir.Path, maxShardBytes: 1000);
        Assert.Equal(new[] { "model.safetensors" }, dir.Entries());
        using var store = TensorStore.Open(dir.Path);
        Assert.Single(store.Files);
        AssertHoldsAll(store);
    }

    [Fact]
    public void Sharded_write_reads_back_through_the_index()
    {
        using var dir = new TempFolder();
        // 40 | 40+24 | 80 (alone: larger than the limit) | 8
        WriteAll(dir.Path, maxShardBytes: 64);
        Assert.Equal(new[]
        {
            "model-00001-of-00004.safetensors", "model-00002-of-00004.safetensors", "model-00003-of-00004.safetensors",
            "model-00004-of-00004.safetensors", "model.safetensors.index.json",
        }, dir.Entries());

        using var index = JsonDocument.Parse(File.ReadAllText(dir.File("model.safetensors.index.json")));
        Assert.Equal(192, index.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64());
        var map = index.RootElement.GetProperty("weight_map");
        Assert.Equal("model-00001-of-00004.safetensors", map.GetProperty("embed.weight").GetString());
        Assert.Equal("model-00002-of-00004.safetensors", map.GetProperty("layers.0.weight").GetString());
        Assert.Equal("model-00002-of-00004.safetensors", map.GetProperty("layers.0.bias").GetString());
        Assert.Equal("model-00003-of-00004.safetensors", map.GetProperty("layers.1.weight").GetString());
        Assert.Equal("model-00004-of-00004.safetensors", map.GetProperty("norm.weight").GetString());

        using var store = TensorStore.Open(dir.Path);
        Assert.Equal(4, store.Files.Count);
        AssertHoldsAll(store);
        using var viaIndex = TensorStore.Open(dir.File("model.safetensors.index.json"));
        AssertHoldsAll(viaIndex);
        using var shard = SafeTensorsFile.Open(dir.File("model-00002-of-00004.safetensors"));
        Assert.Equal("pt", shard.Metadata["format"]);
    }

    [Fact]
    public void Adapter_base_name_is_found_in_a_folder()
    {
        using var dir = new TempFolder();
        WriteAll(dir.Path, maxShardBytes: 1000, baseName: CheckpointFileNames.Adapter);
        Assert.Equal(new[] { "adapter_model.safetensors" }, dir.Entries());
        using var store = TensorStore.Open(dir.Path);
        AssertHoldsAll(store);
    }

    [Fact]
    public void Rewriting_as_shards_removes_a_stale_single_file_and_back()
    {
        using var dir = new TempFolder();
        WriteAll(dir.Path, maxShardBytes: 1000);
        WriteAll(dir.Path, maxShardBytes: 64);
        Assert.DoesNotContain("model.safetensors", dir.Entries());
        WriteAll(dir.Path, maxShardBytes: 1000);
        Assert.DoesNotContain("model.safetensors.index.json", dir.Entries());
        using var store = TensorStore.Open(dir.Path);
        Assert.Single(store.Files);
    }

    [Fact]
    public void Abandoned_sharded_write_leaves_no_index_and_no_temporary_file()
    {
        using var dir = new TempFolder();
        using var scope = torch.NewDisposeScope();
        using (var writer = new ShardedCheckpointWriter(dir.Path, Specs, maxShardBytes: 64))
        {
            writer.Write(Specs[0].Name, Values(Specs[0], 0));
            writer.Write(Specs[1].Name, Values(Specs[1], 1));
        }
        Assert.Equal(new[] { "model-00001-of-00004.safetensors" }, dir.Entries());
        Assert.Throws<FileNotFoundException>(() => TensorStore.Open(dir.Path));
    }

    [Fact]
    public void Index_naming_a_missing_shard_is_refused()
    {
        using var dir = new TempFolder();
        WriteAll(dir.Path, maxShardBytes: 64);
        File.Delete(dir.File("model-00003-of-00004.safetensors"));
        var e = Assert.Throws<InvalidDataException>(() => TensorStore.Open(dir.Path));
        Assert.StartsWith("model.safetensors.index.json: ", e.Message);
        Assert.Contains("'model-00003-of-00004.safetensors'", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Index_listing_a_tensor_its_shard_lacks_is_refused()
    {
        using var dir = new TempFolder();
        WriteAll(dir.Path, maxShardBytes: 64);
        RewriteIndex(dir, map => map["ghost.weight"] = "model-00001-of-00004.safetensors");
        var e = Assert.Throws<InvalidDataException>(() => TensorStore.Open(dir.Path));
        Assert.StartsWith("model.safetensors.index.json: ", e.Message);
        Assert.Contains("'ghost.weight'", e.Message);
        Assert.Contains("'model-00001-of-00004.safetensors'", e.Message);
    }

    [Fact]
    public void Index_mapping_a_tensor_to_the_wrong_shard_is_refused()
    {
        using var dir = new TempFolder();
        WriteAll(dir.Path, maxShardBytes: 64);
        RewriteIndex(dir, map => map["norm.weight"] = "model-00001-of-00004.safetensors");
        var e = Assert.Throws<InvalidDataException>(() => TensorStore.Open(dir.Path));
        Assert.Contains("'norm.weight'", e.Message);
    }

    [Fact]
    public void Tensor_in_two_shards_is_refused()
    {
        using var dir = new TempFolder();
        WriteAll(dir.Path, maxShardBytes: 64);
        // Shard 4 gains a second copy of shard 1's tensor.
        using (var scope = torch.NewDisposeScope())
        {
            SafeTensorsWriter.Save(dir.File("model-00004-of-00004.safetensors"), new Dictionary<string, torch.Tensor>
            {
                ["norm.weight"] = Values(Specs[4], 4),
                ["embed.weight"] = Values(Specs[0], 0),
            });
        }
        var e = Assert.Throws<InvalidDataException>(() => TensorStore.Open(dir.Path));
        Assert.Contains("'embed.weight' is in both shard", e.Message);
    }

    [Theory]
    [InlineData("not json", "not valid JSON")]
    [InlineData("""{"metadata":{}}""", "field 'weight_map' is missing")]
    [InlineData("""{"weight_map":{"a":3}}""", "tensor 'a' maps to a non-string")]
    [InlineData("""{"weight_map":{"a":"../model.safetensors"}}""", "not a file name in the index's folder")]
    public void Malformed_index_is_refused(string json, string expected)
    {
        using var dir = new TempFolder();
        File.WriteAllText(dir.File("model.safetensors.index.json"), json);
        var e = Assert.Throws<InvalidDataException>(() => TensorStore.Open(dir.Path));
        Assert.StartsWith("model.safetensors.index.json: ", e.Message);
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Missing_tensor_and_missing_checkpoint_are_named()
    {
        using var dir = new TempFolder();
        Assert.Throws<FileNotFoundException>(() => TensorStore.Open(dir.Path));
        WriteAll(dir.Path, maxShardBytes: 64);
        using var store = TensorStore.Open(dir.Path);
        Assert.False(store.Contains("nope"));
        var e = Assert.Throws<KeyNotFoundException>(() => store.Load("nope"));
        Assert.Contains("'nope'", e.Message);
    }

    [Fact]
    public void Writing_out_of_declared_order_aborts_the_shard()
    {
        using var dir = new TempFolder();
        using var scope = torch.NewDisposeScope();
        using var writer = new ShardedCheckpointWriter(dir.Path, Specs, maxShardBytes: 1000);
        Assert.Throws<InvalidOperationException>(() => writer.Write(Specs[1].Name, Values(Specs[1], 1)));
        Assert.Empty(dir.Entries());
        Assert.Throws<InvalidOperationException>(() => writer.Commit());
    }

    private static void RewriteIndex(TempFolder dir, Action<Dictionary<string, string>> edit)
    {
        var path = dir.File("model.safetensors.index.json");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var map = doc.RootElement.GetProperty("weight_map").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
        edit(map);
        File.WriteAllText(path, JsonSerializer.Serialize(new { metadata = new { total_size = 0 }, weight_map = map }));
    }
}
