using Amalgam.Routing;
using static TorchSharp.torch;

namespace Amalgam.Tests.Routing;

/// <summary>Damaged router folders give one-line errors naming the file (and the field or tensor).</summary>
public class RouterFileTests
{
    static string SavedLearned(TestData.TempDir dir)
    {
        using var scope = NewDisposeScope();
        var (train, _, _) = SyntheticClusters.Draw(0, experts: 2, trainPerExpert: 10);
        var (router, _) = LearnedRouter.Train(train.Features, train.Labels, SyntheticClusters.Names(2), new() { Steps = 3 });
        using var _r = router;
        router.Save(dir["router"]);
        return dir["router"];
    }

    static void AssertOneLineNaming(Exception e, params string[] parts)
    {
        Assert.DoesNotContain('\n', e.Message);
        foreach (var p in parts) Assert.Contains(p, e.Message);
    }

    [Fact]
    public void A_missing_tensor_file_is_named()
    {
        using var dir = new TestData.TempDir();
        string folder = SavedLearned(dir);
        File.Delete(Path.Combine(folder, "router.safetensors"));
        AssertOneLineNaming(Assert.Throws<FileNotFoundException>(() => LearnedRouter.Load(folder)), "router.safetensors", "missing");
    }

    [Fact]
    public void A_corrupt_tensor_file_is_named()
    {
        using var dir = new TestData.TempDir();
        string folder = SavedLearned(dir);
        File.WriteAllBytes(Path.Combine(folder, "router.safetensors"), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        AssertOneLineNaming(Assert.Throws<InvalidDataException>(() => LearnedRouter.Load(folder)), "router.safetensors");
    }

    [Fact]
    public void A_tensor_of_the_wrong_shape_is_named()
    {
        using var dir = new TestData.TempDir();
        string folder = SavedLearned(dir);
        TestData.RewriteSafetensors(Path.Combine(folder, "router.safetensors"), t => { t["layers.1.bias"] = zeros(5); return t; });
        AssertOneLineNaming(Assert.Throws<InvalidDataException>(() => LearnedRouter.Load(folder)), "router.safetensors", "'layers.1.bias'", "[5]");
    }

    [Fact]
    public void A_missing_or_corrupt_description_is_named()
    {
        using var dir = new TestData.TempDir();
        string folder = SavedLearned(dir);
        string json = Path.Combine(folder, "router.json");
        File.WriteAllText(json, "{ \"kind\": \"learned\", \"experts\": [\"a\", ");
        AssertOneLineNaming(Assert.Throws<InvalidDataException>(() => LearnedRouter.Load(folder)), "router.json");
        File.WriteAllText(json, "{ \"kind\": \"centroid\", \"experts\": [\"a\", \"b\"], \"feature_dim\": 16, \"temperature\": 0.05 }");
        AssertOneLineNaming(Assert.Throws<InvalidDataException>(() => LearnedRouter.Load(folder)), "router.json", "kind");
        File.WriteAllText(json, "{ \"kind\": \"learned\", \"experts\": [\"a\", \"b\"], \"feature_dim\": 16, \"options\": { \"hidden_width\": 0 } }");
        AssertOneLineNaming(Assert.Throws<InvalidDataException>(() => LearnedRouter.Load(folder)), "router.json", "hidden_width");
        File.WriteAllText(json, "{ \"kind\": \"oracle\", \"experts\": [\"a\"], \"feature_dim\": 16 }");
        AssertOneLineNaming(Assert.Throws<InvalidDataException>(() => RouterFiles.Load(folder)), "router.json", "oracle");
        File.Delete(json);
        AssertOneLineNaming(Assert.Throws<FileNotFoundException>(() => RouterFiles.Load(folder)), "router.json");
    }
}
