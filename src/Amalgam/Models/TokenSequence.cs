namespace Amalgam.Models;

/// <summary>
/// A training sequence of token ids; the loss is taken only on tokens at index ≥ <paramref name="LossFrom"/>
/// (the target and end-of-sequence of an instruction example; 1 for plain language modelling after bos).
/// </summary>
public sealed record TokenSequence(long[] Ids, int LossFrom);
