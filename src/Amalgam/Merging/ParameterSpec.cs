namespace Amalgam.Merging;

public enum ParameterScope { Global, PerModel }

public enum ParameterKind { Number, Bool, Choice }

/// <summary>
/// One parameter of a merge method. <paramref name="Default"/> null means required. Per-model parameters may also
/// be given globally (mergekit: per-model values override global ones). <paramref name="Choices"/> lists the
/// allowed values of a <see cref="ParameterKind.Choice"/>.
/// </summary>
public sealed record ParameterSpec(
    string Name,
    ParameterScope Scope,
    ParameterKind Kind,
    object? Default,
    string Description,
    IReadOnlyList<string>? Choices = null);
