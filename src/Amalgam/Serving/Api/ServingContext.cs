using Amalgam.Serving.Engine;
using Amalgam.Tokenizers;

namespace Amalgam.Serving.Api;

/// <summary>
/// What the endpoints share: the names served, the engine, the base's tokenizer and context length, metrics,
/// and the chat renderer (null: the model has no chat template).
/// </summary>
public sealed record ServingContext(ModelCatalog Catalog, ServingEngine Engine, ITextTokenizer Tokenizer, int ContextLength,
    ServingMetrics Metrics, Func<IReadOnlyList<ChatMessage>, string>? ChatTemplate, string? ApiKey);

/// <summary>One chat message (its content flattened to text).</summary>
public sealed record ChatMessage(string Role, string Content);
