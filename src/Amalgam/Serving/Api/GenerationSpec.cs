using Amalgam.Serving.Engine;

namespace Amalgam.Serving.Api;

/// <summary>What a completions or chat request asks for, validated: who answers, the prompt ids, decoding and output options.</summary>
public sealed record GenerationSpec(string ModelName, IServedModel Model, IReadOnlyList<long> Prompt, SamplingParams Sampling,
    IReadOnlyList<string> Stop, bool Stream, bool IncludeUsage);

/// <summary>The fields both endpoints share, read and checked against the model's context.</summary>
public static class GenerationFields
{
    public static (string Name, IServedModel Model) Model(JsonFields f, ModelCatalog catalog) =>
        (f.RequiredString("model"), catalog.Resolve(f.RequiredString("model"), f.Weights("adapters")));

    public static void RefuseUnsupported(JsonFields f)
    {
        f.Unsupported("n", v => v.TryGetInt32(out var n) && n == 1, "only n = 1 is supported");
        f.Unsupported("best_of", v => v.TryGetInt32(out var n) && n == 1, "only best_of = 1 is supported");
        f.Unsupported("echo", v => v.ValueKind == System.Text.Json.JsonValueKind.False, "echo is not supported");
        f.Unsupported("suffix", _ => false, "suffix is not supported");
        f.Unsupported("presence_penalty", v => v.TryGetDouble(out var x) && x == 0, "only 0 is supported");
        f.Unsupported("frequency_penalty", v => v.TryGetDouble(out var x) && x == 0, "only 0 is supported");
        f.Unsupported("logit_bias", v => v.ValueKind == System.Text.Json.JsonValueKind.Object && !v.EnumerateObject().Any(), "logit_bias is not supported");
        f.Unsupported("tools", v => v.ValueKind == System.Text.Json.JsonValueKind.Array && v.GetArrayLength() == 0, "tools are not supported");
    }

    /// <summary>
    /// Sampling options; the length field is max_tokens (or chat's max_completion_tokens); its default is
    /// <paramref name="defaultMaxTokens"/> (null: all the room left in the context) capped by that room.
    /// </summary>
    public static SamplingParams Sampling(JsonFields f, int promptLength, int context, int? defaultMaxTokens, int? logprobs)
    {
        string maxName = f.Get("max_completion_tokens") is not null ? "max_completion_tokens" : "max_tokens";
        if (promptLength >= context)
            throw ApiException.BadRequest(f.Get("messages") is not null ? "messages" : "prompt",
                $"the prompt has {promptLength} tokens; this model's context is {context} tokens, leaving no room to generate");
        int room = context - promptLength;
        int maxTokens = f.Int(maxName, 1, int.MaxValue) ?? Math.Min(defaultMaxTokens ?? room, room);
        if (maxTokens > room)
            throw ApiException.BadRequest(maxName, $"must be at most {room}: the context is {context} tokens and the prompt takes {promptLength}");
        double temperature = f.Number("temperature", 0, 2) ?? 1;
        double topP = f.Number("top_p", 0, 1) ?? 1;
        if (topP == 0) throw ApiException.BadRequest("top_p", "must be greater than 0");
        int? seed = f.Int("seed", int.MinValue, int.MaxValue);
        return new SamplingParams(maxTokens, temperature, topP, seed, logprobs, f.Bool("ignore_eos") ?? false);
    }

    public static (bool Stream, bool IncludeUsage) Streaming(JsonFields f)
    {
        bool stream = f.Bool("stream") ?? false;
        bool usage = false;
        if (f.Get("stream_options") is { } o)
        {
            if (o.ValueKind != System.Text.Json.JsonValueKind.Object) throw ApiException.BadRequest("stream_options", "must be an object");
            usage = new JsonFields(o).Bool("include_usage") ?? false;
        }
        return (stream, usage);
    }
}
