using Amalgam.Routing;
using static TorchSharp.torch;

namespace Amalgam.Tests.Routing;

public class RouteSelectionTests
{
    static float[] Values(Tensor t) => t.data<float>().ToArray();

    [Fact]
    public void TopK_keeps_the_k_largest_and_renormalises()
    {
        using var scope = NewDisposeScope();
        var p = tensor(new float[] { 0.1f, 0.5f, 0.15f, 0.25f, 0.4f, 0.3f, 0.2f, 0.1f }, [2, 4]);
        var top2 = Values(RouteSelection.TopK(p, 2));
        float[] expected = [0, 0.5f / 0.75f, 0, 0.25f / 0.75f, 0.4f / 0.7f, 0.3f / 0.7f, 0, 0];
        for (int i = 0; i < 8; i++) Assert.Equal(expected[i], top2[i], 1e-6);
        var top1 = Values(RouteSelection.TopK(p, 1));
        Assert.Equal(new float[] { 0, 1, 0, 0, 1, 0, 0, 0 }, top1);
        Assert.Equal(top1, Values(RouteSelection.Argmax(p)));
    }

    [Fact]
    public void TopK_of_at_least_K_returns_the_dense_probabilities_as_a_new_tensor()
    {
        using var scope = NewDisposeScope();
        var p = tensor(new float[] { 0.1f, 0.5f, 0.15f, 0.25f }, [1, 4]);
        var all = RouteSelection.TopK(p, 7);
        Assert.True(all.equal(p).all().item<bool>());
        all.mul_(2);
        Assert.Equal(0.5f, p[0, 1].item<float>());
    }
}
