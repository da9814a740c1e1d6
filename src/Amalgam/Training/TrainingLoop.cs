using Amalgam.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Amalgam.Training;

/// <summary>
/// The optimisation loop both trainers share: seeded batch sampling, AdamW with the warm-up/cosine schedule,
/// clipping, mean cross-entropy over the labelled positions; one dispose scope per step.
/// </summary>
public static class TrainingLoop
{
    public static IReadOnlyList<TrainingStep> Run(CausalLM model, IReadOnlyList<Parameter> parameters, IReadOnlyList<TokenSequence> data,
        TrainingOptions options, long padId, IProgress<TrainingStep>? progress = null)
    {
        options.Validate();
        if (data.Count == 0) throw new ArgumentException("no training sequences");
        var rng = new Random(options.Seed);
        var optimizer = optim.AdamW(parameters, options.LearningRate, 0.9, 0.999, 1e-8, options.WeightDecay);
        var log = new List<TrainingStep>(options.Steps);
        var order = new List<int>();
        for (int step = 0; step < options.Steps; step++)
        {
            using var scope = NewDisposeScope();
            double lr = options.LearningRateAt(step);
            foreach (var group in optimizer.ParamGroups) group.LearningRate = lr;
            var batch = new List<TokenSequence>(options.BatchSize);
            for (int i = 0; i < options.BatchSize; i++)
            {
                // Epochs of shuffled order, so every sequence is seen once before any is seen twice.
                if (order.Count == 0) order.AddRange(Enumerable.Range(0, data.Count).OrderBy(_ => rng.Next()));
                batch.Add(data[order[^1]]);
                order.RemoveAt(order.Count - 1);
            }
            var (ids, mask, labels) = SequenceBatch.Build(batch, padId);
            optimizer.zero_grad();
            var logits = model.forward(new DecoderInput(ids, mask)).Logits;
            var loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[^1]), labels.reshape(-1), ignore_index: SequenceBatch.Ignore);
            float value = loss.item<float>();
            if (!float.IsFinite(value)) throw new InvalidOperationException($"training diverged: loss is {value} at step {step + 1}; lower the learning rate");
            loss.backward();
            double norm = nn.utils.clip_grad_norm_(parameters, options.ClipNorm);
            GcSafeStep.Step(optimizer);
            var record = new TrainingStep(step + 1, options.Steps, value, lr, norm);
            log.Add(record);
            progress?.Report(record);
        }
        optimizer.Dispose();
        return log;
    }
}
