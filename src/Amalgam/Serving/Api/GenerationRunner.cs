using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Amalgam.Serving.Engine;
using Microsoft.AspNetCore.Http;

namespace Amalgam.Serving.Api;

/// <summary>How one endpoint shapes its answers: the whole response, and the chunks of a stream.</summary>
public interface IAnswerFormat
{
    /// <summary>The complete (non-streamed) response body.</summary>
    JsonObject Response(string id, long created, string model, string text, IReadOnlyList<TokenEvent> tokens, string finish, JsonObject usage);

    /// <summary>A stream's opening chunk (chat sends the role), or null.</summary>
    JsonObject? First(string id, long created, string model);

    /// <summary>A stream chunk with new text (and the tokens behind it, for logprobs) or the finish reason.</summary>
    JsonObject Chunk(string id, long created, string model, string text, IReadOnlyList<TokenEvent> tokens, string? finish);
}

/// <summary>
/// Submits a request to the engine and answers it, whole or as server-sent events ending in <c>data: [DONE]</c>.
/// A stop string ends the request (the engine frees its rows at the next step), and so does the client leaving.
/// </summary>
public static class GenerationRunner
{
    public static async Task RunAsync(HttpContext ctx, ServingContext s, GenerationSpec spec, IAnswerFormat format, string idPrefix)
    {
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted);
        var request = new GenerationRequest(spec.Prompt, spec.Model, spec.Sampling, cancel.Token);
        var engine = spec.Model.Engine ?? s.Engine;
        switch (engine.TrySubmit(request))
        {
            case EngineRefusal.QueueFull:
                ctx.Response.Headers.RetryAfter = "1";
                throw new ApiException(429, null, $"the queue is full ({engine.Options.MaxQueue} requests waiting); retry later", "queue_full");
            case EngineRefusal.ShuttingDown:
                throw new ApiException(503, null, "the server is shutting down", "shutting_down");
        }
        try
        {
            string id = idPrefix + Guid.NewGuid().ToString("N")[..24];
            long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            var text = new TextAssembler(s.Tokenizer, spec.Stop);
            var tokens = new List<TokenEvent>();
            if (!spec.Stream)
            {
                string finish = "stop";
                await foreach (var e in request.Events.Reader.ReadAllAsync(ctx.RequestAborted))
                {
                    if (e is TokenEvent t)
                    {
                        tokens.Add(t);
                        text.Add(t.Token);
                        if (text.Stopped) { finish = "stop"; break; }
                    }
                    else if (e is FinishEvent f)
                    {
                        if (f.Reason == "error") throw new ApiException(f.Status, f.Param, f.Error ?? "generation failed");
                        finish = f.Reason;
                        break;
                    }
                }
                await WriteJson(ctx, format.Response(id, created, spec.ModelName, text.Text, tokens, finish, Usage(spec, tokens.Count)));
                return;
            }

            bool started = false;
            async Task Send(JsonObject chunk)
            {
                if (!started)
                {
                    ctx.Response.ContentType = "text/event-stream";
                    ctx.Response.Headers.CacheControl = "no-cache";
                    started = true;
                }
                await ctx.Response.WriteAsync("data: " + chunk.ToJsonString(Json) + "\n\n", Encoding.UTF8, ctx.RequestAborted);
                await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
            }

            string? end = null;
            await foreach (var e in request.Events.Reader.ReadAllAsync(ctx.RequestAborted))
            {
                if (e is TokenEvent t)
                {
                    if (!started && format.First(id, created, spec.ModelName) is { } first) await Send(first);
                    tokens.Add(t);
                    var delta = text.Add(t.Token);
                    if (text.Stopped) { await Send(format.Chunk(id, created, spec.ModelName, delta, [t], "stop")); end = "stop"; break; }
                    if (delta.Length > 0 || spec.Sampling.Logprobs is not null) await Send(format.Chunk(id, created, spec.ModelName, delta, [t], null));
                }
                else if (e is FinishEvent f)
                {
                    if (f.Reason == "error")
                    {
                        if (!started) throw new ApiException(f.Status, f.Param, f.Error ?? "generation failed");
                        await Send(new ApiException(f.Status, f.Param, f.Error ?? "generation failed").Body());
                    }
                    else
                    {
                        if (!started && format.First(id, created, spec.ModelName) is { } first) await Send(first);
                        await Send(format.Chunk(id, created, spec.ModelName, text.Flush(), [], f.Reason));
                    }
                    end = f.Reason;
                    break;
                }
            }
            if (end is null) return;   // the client left
            if (spec.IncludeUsage)
                await Send(new JsonObject { ["id"] = id, ["object"] = format.Chunk(id, created, spec.ModelName, "", [], null)["object"]!.GetValue<string>(),
                    ["created"] = created, ["model"] = spec.ModelName, ["choices"] = new JsonArray(), ["usage"] = Usage(spec, tokens.Count) });
            await ctx.Response.WriteAsync("data: [DONE]\n\n", ctx.RequestAborted);
            await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
        }
        finally
        {
            cancel.Cancel();   // frees the request's rows if it is still running (stop string, client gone, error)
        }
    }

    // Text as it is (no \u0027 for quotes): the bodies are JSON over HTTP, never embedded in HTML.
    static readonly JsonSerializerOptions Json = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    static JsonObject Usage(GenerationSpec spec, int completion) => new()
    {
        ["prompt_tokens"] = spec.Prompt.Count,
        ["completion_tokens"] = completion,
        ["total_tokens"] = spec.Prompt.Count + completion,
    };

    public static async Task WriteJson(HttpContext ctx, JsonNode body, int status = 200)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        await ctx.Response.WriteAsync(body.ToJsonString(Json), Encoding.UTF8);
    }
}
