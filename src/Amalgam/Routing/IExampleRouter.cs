using static TorchSharp.torch;

namespace Amalgam.Routing;

/// <summary>
/// A per-example router: weights over K experts as a function of an example's features (e.g. the mean-pooled
/// hidden state of its prompt, <see cref="PromptFeatures.MeanPooled"/>).
/// </summary>
public interface IExampleRouter
{
    /// <summary>The experts' names, in probability-column order (the order an ExpertLibrary must use).</summary>
    IReadOnlyList<string> Experts { get; }

    /// <summary>Features [N, F] → a new float32 tensor [N, K] whose rows sum to 1.</summary>
    Tensor Probabilities(Tensor features);
}
