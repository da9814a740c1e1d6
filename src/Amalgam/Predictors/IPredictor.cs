using Amalgam.Models;

namespace Amalgam.Predictors;

/// <summary>
/// One way of answering with a base model and its experts (the model alone, a per-row mixture of experts, an
/// ensemble of their outputs): greedy continuations of prompts and teacher-forced log-likelihoods of given
/// continuations, both over whole request sets so that routing can look at every prompt (group-wise merges do).
/// </summary>
public interface IPredictor
{
    /// <summary>The base model (its config gives stop tokens and padding).</summary>
    CausalLM Model { get; }

    /// <summary>Greedy continuation of every prompt (bos included), each ending before its first stop token.</summary>
    IReadOnlyList<IReadOnlyList<long>> Generate(IReadOnlyList<IReadOnlyList<long>> prompts, int maxNewTokens,
        IReadOnlyCollection<long> stopTokens, long padId);

    /// <summary>
    /// Summed log-probability of each sequence's tokens from <see cref="TokenSequence.LossFrom"/> on, given the tokens
    /// before them; routing sees only the prompt <c>Ids[..LossFrom]</c>.
    /// </summary>
    IReadOnlyList<double> LogLikelihoods(IReadOnlyList<TokenSequence> sequences, long padId);
}
