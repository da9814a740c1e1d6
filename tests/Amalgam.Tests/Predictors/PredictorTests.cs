using Amalgam.Ensembling;
using Amalgam.Experts;
using Amalgam.Mixing;
using Amalgam.Models;
using Amalgam.Predictors;
using Amalgam.Training;
using static TorchSharp.torch;

namespace Amalgam.Tests.Predictors;

public class PredictorTests
{
    static readonly string[] Adapters = ["llama_gqa.lora_qv", "llama_gqa.lora_all", "llama_gqa.lora_rslora"];

    static (CausalLM Model, List<LoraAdapter> Experts) Load()
    {
        var model = CheckpointLoader.Load(TestData.Golden("llama_gqa"));
        return (model, Adapters.Select(a => LoraAdapter.Load(TestData.Golden(a), model)).ToList());
    }

    static List<TokenSequence> Sequences() =>
        TestData.Case("llama_gqa").Sequences.Select(s => new TokenSequence(s, Math.Max(1, s.Length - 3))).ToList();

    /// <summary>The reference: each sequence scored by the model with one expert attached, summed over its loss span.</summary>
    static double[,] PerExpertLogLikelihoods(CausalLM model, List<LoraAdapter> experts, List<TokenSequence> seqs)
    {
        var result = new double[seqs.Count, experts.Count];
        for (int e = 0; e < experts.Count; e++)
            using (experts[e].AttachTo(model))
            {
                var ll = new ModelPredictor(model).LogLikelihoods(seqs, 0);
                for (int i = 0; i < seqs.Count; i++) result[i, e] = ll[i];
            }
        return result;
    }

    [Fact]
    public void A_per_row_mixture_with_one_hot_weights_answers_like_each_row_s_expert_attached_alone()
    {
        var (model, experts) = Load();
        var seqs = Sequences();
        var reference = PerExpertLogLikelihoods(model, experts, seqs);
        var prompts = TestData.Case("llama_gqa").Sequences.Select(s => (IReadOnlyList<long>)s).ToList();
        var expertOf = Enumerable.Range(0, prompts.Count).Select(i => (i + 1) % experts.Count).ToArray();
        using var library = new ExpertLibrary(model, experts);
        var predictor = new MixturePredictor(model, p => nn.functional.one_hot(tensor(expertOf.Take(p.Count).Select(e => (long)e).ToArray()), experts.Count).to(ScalarType.Float32), batchSize: 2);
        var ll = predictor.LogLikelihoods(seqs, 0);
        for (int i = 0; i < seqs.Count; i++) Assert.Equal(reference[i, expertOf[i]], ll[i], 3);
        var generated = predictor.Generate(prompts, 6, [], 0);
        for (int i = 0; i < prompts.Count; i++)
            Assert.Equal(TestData.Case("llama_gqa+" + Adapters[expertOf[i]].Split('.')[1]).Greedy[i], generated[i]);
        model.Dispose();
    }

    [Theory]
    [InlineData(EnsembleAggregation.Probabilities)]
    [InlineData(EnsembleAggregation.LogProbabilities)]
    public void An_ensemble_scores_sequences_on_the_combined_distribution(EnsembleAggregation aggregation)
    {
        var (model, experts) = Load();
        var seqs = Sequences();
        // Independent reference: per-position expert log-distributions combined in float64 by hand.
        var w = new[] { 0.5, 0.3, 0.2 };
        var expected = new double[seqs.Count];
        var perExpert = experts.Select(e => { using (e.AttachTo(model)) return seqs.Select(s => model.Logits(s.Ids).to(ScalarType.Float64)).ToList(); }).ToList();
        for (int i = 0; i < seqs.Count; i++)
        {
            using var scope = NewDisposeScope();
            var logps = perExpert.Select(l => nn.functional.log_softmax(l[i], -1)).ToList();
            var combined = aggregation == EnsembleAggregation.Probabilities
                ? logps.Select((l, k) => l.exp() * w[k]).Aggregate((a, b) => a + b).log()
                : nn.functional.log_softmax(logps.Select((l, k) => l * w[k]).Aggregate((a, b) => a + b), -1);
            for (int t = seqs[i].LossFrom; t < seqs[i].Ids.Length; t++) expected[i] += combined[t - 1, seqs[i].Ids[t]].item<double>();
        }
        using var library = new ExpertLibrary(model, experts);
        var ll = EnsemblePredictor.Weighted(model, w, aggregation, batchSize: 2).LogLikelihoods(seqs, 0);
        for (int i = 0; i < seqs.Count; i++) Assert.Equal(expected[i], ll[i], 3);
        model.Dispose();
    }

    [Fact]
    public void Routing_by_outputs_gives_each_prompt_its_own_experts_and_weights()
    {
        var (model, experts) = Load();
        var seqs = Sequences();
        var prompts = seqs.Select(s => (IReadOnlyList<long>)s.Ids).ToList();
        // Prompt i uses experts (i mod 3, i+1 mod 3) with weights 0.7/0.3; each equals a full ensemble whose weights put
        // 0.7/0.3 on the same experts and 0 on the third.
        using var library = new ExpertLibrary(model, experts);
        var routed = new EnsemblePredictor(model, 3, p => (
            tensor(Enumerable.Range(0, p.Count).SelectMany(i => new long[] { i % 3, (i + 1) % 3 }).ToArray(), [p.Count, 2]),
            tensor(Enumerable.Range(0, p.Count).SelectMany(_ => new[] { 0.7f, 0.3f }).ToArray(), [p.Count, 2])), EnsembleAggregation.Probabilities);
        var ll = routed.LogLikelihoods(seqs, 0);
        var generated = routed.Generate(prompts, 5, [], 0);
        for (int i = 0; i < seqs.Count; i++)
        {
            var w = new double[3];
            w[i % 3] = 0.7;
            w[(i + 1) % 3] = 0.3;
            var full = EnsemblePredictor.Weighted(model, w, EnsembleAggregation.Probabilities);
            Assert.Equal(full.LogLikelihoods([seqs[i]], 0)[0], ll[i], 4);
            Assert.Equal(full.Generate([prompts[i]], 5, [], 0)[0], generated[i]);
        }
        model.Dispose();
    }

    [Fact]
    public void Bad_ensemble_choices_are_refused()
    {
        var (model, experts) = Load();
        using var library = new ExpertLibrary(model, experts);
        var prompts = new List<IReadOnlyList<long>> { new long[] { 5, 6 } };
        Assert.Throws<ArgumentException>(() => new EnsemblePredictor(model, 3, p => (tensor(new long[] { 0, 3 }, [1, 2]), tensor(new[] { 0.5f, 0.5f }, [1, 2])), EnsembleAggregation.Probabilities).Generate(prompts, 2, [], 0));
        Assert.Throws<ArgumentException>(() => new EnsemblePredictor(model, 3, p => (tensor(new long[] { 0, 1 }, [1, 2]), tensor(new[] { 0.5f, 0.6f }, [1, 2])), EnsembleAggregation.Probabilities).Generate(prompts, 2, [], 0));
        Assert.Throws<ArgumentException>(() => new MixturePredictor(model, p => zeros(2, 3)).Generate(prompts, 2, [], 0));
        model.Dispose();
    }
}
