namespace Amalgam.Strategies;

/// <summary>What fitted weights minimise on the fitting examples.</summary>
public enum FitObjective
{
    /// <summary>Supervised: cross-entropy of the targets (and end of sequence) given the prompts.</summary>
    CrossEntropy,
    /// <summary>Unsupervised (AdaMerging): entropy of the next-token distribution at each prompt's first answer position; targets unused.</summary>
    Entropy,
}
