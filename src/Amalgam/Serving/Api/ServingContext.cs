using Amalgam.Serving.Engine;
using Amalgam.Tokenizers;

namespace Amalgam.Serving.Api;

/// <summary>
/// What the endpoints share: the names served, the engine, the base's tokenizer and context length, metrics,
/// the chat renderer (null: the model has no chat template) and, in gateway mode, the upstream.
/// </summary>
public sealed record ServingContext(ModelCatalog Catalog, ServingEngine Engine, ITextTokenizer Tokenizer, int ContextLength,
    ServingMetrics Metrics, Func<IReadOnlyList<ChatMessage>, string>? ChatTemplate, string? ApiKey, UpstreamGateway? Gateway = null);

/// <summary>One chat message (its content flattened to text).</summary>
public sealed record ChatMessage(string Role, string Content);
