using Amalgam.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Amalgam.Tests.Models;

/// <summary>The preallocated cache returns exactly what concatenating every step would, growing by doubling.</summary>
public class KvCacheTests
{
    [Fact]
    public void Appending_in_place_equals_concatenation_and_grows_by_doubling()
    {
        using var scope = NewDisposeScope();
        var g = new Generator(2);
        using var cache = new KvCache(layers: 2, capacity: 2);
        var keys = new List<Tensor>();
        var masks = new List<Tensor>();
        long[] capacities = [2, 4, 4, 8];
        int step = 0;
        foreach (int t in new[] { 1, 2, 1, 3 })
        {
            var k = randn([3, 2, t, 4], generator: g);
            var m = randint(0, 2, [3, t], generator: g);
            keys.Add(k);
            masks.Add(m);
            var all = cache.AppendMask(m);
            var (ak, av) = cache.Append(0, k, k * 2);
            cache.Append(1, -k, k);
            Assert.Equal(cat(masks, 1).data<long>().ToArray(), all.contiguous().data<long>().ToArray());
            Assert.Equal(cat(keys, 2).shape, ak.shape);
            Assert.Equal(cat(keys, 2).data<float>().ToArray(), ak.contiguous().data<float>().ToArray());
            Assert.Equal((cat(keys, 2) * 2).data<float>().ToArray(), av.contiguous().data<float>().ToArray());
            Assert.Equal(capacities[step++], cache.Capacity);
        }
        Assert.Equal(7, cache.Length);
    }

    [Fact]
    public void The_cache_leaves_no_tensors_behind()
    {
        long before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        using (var scope = NewDisposeScope())
        {
            using var cache = new KvCache(layers: 1);
            for (int i = 0; i < 5; i++)
            {
                using var stepScope = NewDisposeScope();
                cache.AppendMask(ones(1, 1, ScalarType.Int64));
                cache.Append(0, ones(1, 1, 1, 2), ones(1, 1, 1, 2));
            }
        }
        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }
}
