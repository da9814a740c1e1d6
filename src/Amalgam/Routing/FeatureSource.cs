namespace Amalgam.Routing;

/// <summary>
/// Where a per-example router reads its prompt features from the base model, mean-pooled over the prompt's tokens:
/// the token embeddings (no layer runs: a lookup), the residual stream after the first k of L layers (a partial
/// prompt pass, k/L of the full one), or the final-norm hidden state after all L layers (the full pass, the default).
/// Written <c>embeddings</c>, <c>layer-K</c>, <c>final</c>.
/// </summary>
public readonly record struct FeatureSource
{
    /// <summary>Layers that run: 0 for the embeddings, k for layer-k, null for the full pass with the final norm.</summary>
    public int? Layers { get; }

    FeatureSource(int? layers) => Layers = layers;

    public static FeatureSource Final => new(null);
    public static FeatureSource Embeddings => new(0);

    /// <summary>The residual stream after layer <paramref name="k"/> (1-based; k ≥ 1), before any norm.</summary>
    public static FeatureSource AfterLayer(int k) =>
        k >= 1 ? new(k) : throw new ArgumentException($"feature source: layer must be at least 1, got {k} (use 'embeddings' for none)", nameof(k));

    public bool IsFinal => Layers is null;

    /// <summary>The layers this source runs for a model of <paramref name="modelLayers"/>, checked against it.</summary>
    public int LayersRun(int modelLayers) =>
        Layers is int k ? k <= modelLayers ? k : throw new ArgumentException($"feature source '{this}': the model has only {modelLayers} layers") : modelLayers;

    public override string ToString() => Layers switch { null => "final", 0 => "embeddings", int k => $"layer-{k}" };

    /// <summary>Parses <c>final</c>, <c>embeddings</c> or <c>layer-K</c>.</summary>
    public static FeatureSource Parse(string text) => text switch
    {
        "final" => Final,
        "embeddings" => Embeddings,
        _ when text.StartsWith("layer-", StringComparison.Ordinal) && int.TryParse(text.AsSpan(6), System.Globalization.NumberStyles.None,
            System.Globalization.CultureInfo.InvariantCulture, out int k) && k >= 1 => AfterLayer(k),
        _ => throw new ArgumentException($"feature source '{text}': expected 'final', 'embeddings' or 'layer-K' (K ≥ 1)"),
    };
}
