using Amalgam.Experts;
using Amalgam.Models;
using Amalgam.Serving;
using Amalgam.Serving.Engine;
using Amalgam.Tests.Tensors;
using TorchSharp;

namespace Amalgam.Tests.Serving;

/// <summary>The engine without HTTP: requests joining and leaving a mixed batch, then every tensor freed on stop.</summary>
[Collection(nameof(TensorCountCollection))]
public sealed class ServingEngineTests
{
    [Fact]
    public async Task MixedRequestsJoinAndLeaveAndStoppingFreesEveryTensor()
    {
        using var model = CheckpointLoader.Load(ServingFixture.BaseDir);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long before = torch.Tensor.TotalCount;
        var adapters = new Dictionary<string, LoraAdapter>
        {
            ["reverse_word"] = LoraAdapter.Load(ServingFixture.ExpertDir("reverse_word"), model),
            ["uppercase"] = LoraAdapter.Load(ServingFixture.ExpertDir("uppercase"), model),
        };
        var engine = new ServingEngine(model, adapters, [3], 0, new EngineOptions(MaxBatch: 4, MaxQueue: 16), new ServingMetrics());
        var served = new IServedModel[]
        {
            new BaseServedModel("base"),
            new FixedMixServedModel("reverse_word", "adapter", new Dictionary<string, double> { ["reverse_word"] = 1 }),
            new FixedMixServedModel("mix", "mix", new Dictionary<string, double> { ["reverse_word"] = 0.5, ["uppercase"] = 0.5 }),
        };
        var requests = Enumerable.Range(0, 9).Select(i => new GenerationRequest([2, 10 + i, 11, 12], served[i % 3],
            new SamplingParams(MaxTokens: 3 + i, Temperature: 1, Seed: i), CancellationToken.None)).ToList();
        foreach (var r in requests) Assert.Equal(EngineRefusal.None, engine.TrySubmit(r));
        var counts = await Task.WhenAll(requests.Select(async r =>
        {
            int tokens = 0;
            string reason = "";
            await foreach (var e in r.Events.Reader.ReadAllAsync())
                if (e is TokenEvent) tokens++;
                else if (e is FinishEvent f) reason = f.Reason;
            return (tokens, reason);
        }));
        for (int i = 0; i < requests.Count; i++)
        {
            Assert.Contains(counts[i].reason, new[] { "stop", "length" });
            Assert.True(counts[i].reason == "stop" ? counts[i].tokens < 3 + i : counts[i].tokens == 3 + i);
        }
        await engine.StopAsync();
        Assert.Equal(EngineRefusal.ShuttingDown, engine.TrySubmit(requests[0]));
        GC.Collect();
        GC.WaitForPendingFinalizers();
        Assert.Equal(before, torch.Tensor.TotalCount);
    }
}
