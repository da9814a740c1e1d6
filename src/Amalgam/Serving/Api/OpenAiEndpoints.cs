using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Prometheus;

namespace Amalgam.Serving.Api;

/// <summary>
/// The HTTP surface, as vLLM exposes it: completions and chat (whole or streamed), models, adapter load/unload,
/// health and Prometheus metrics. Every refusal is an OpenAI-style error body with a 4xx naming the field;
/// the optional API key guards /v1/*.
/// </summary>
public static class OpenAiEndpoints
{
    public static void Map(WebApplication app, ServingContext s)
    {
        app.Use(async (ctx, next) =>
        {
            try
            {
                if (s.ApiKey is not null && ctx.Request.Path.StartsWithSegments("/v1") && !Authorized(ctx, s.ApiKey))
                    throw new ApiException(401, null, "missing or wrong API key (send Authorization: Bearer KEY)", "invalid_api_key");
                await next(ctx);
            }
            catch (ApiException e) when (!ctx.Response.HasStarted)
            {
                await GenerationRunner.WriteJson(ctx, e.Body(), e.Status);
            }
            catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
            {
                // the client left; the engine has been told through the request's cancellation
            }
            catch (Exception e) when (!ctx.Response.HasStarted)
            {
                Console.Error.WriteLine($"amalgam serve: {ctx.Request.Path}: {e}");
                await GenerationRunner.WriteJson(ctx, new ApiException(500, null, "internal error: " + e.Message).Body(), 500);
            }
            finally
            {
                string path = ctx.Request.Path.Value ?? "";
                s.Metrics.Requests.WithLabels(Paths.Contains(path) ? path : "other", ctx.Response.StatusCode.ToString()).Inc();
            }
        });

        app.MapPost("/v1/completions", ctx => Completions(ctx, s));
        app.MapPost("/v1/chat/completions", ctx => Chat(ctx, s));
        app.MapGet("/v1/models", ctx => GenerationRunner.WriteJson(ctx, Models(s)));
        app.MapPost("/v1/load_lora_adapter", ctx => LoadAdapter(ctx, s));
        app.MapPost("/v1/unload_lora_adapter", ctx => UnloadAdapter(ctx, s));
        app.MapGet("/health", ctx => ctx.Response.WriteAsync(""));
        app.MapGet("/metrics", async ctx =>
        {
            ctx.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            await s.Metrics.Registry.CollectAndExportAsTextAsync(ctx.Response.Body, ctx.RequestAborted);
        });
    }

    // Label values are the known endpoints only (a client probing random paths must not grow the metrics).
    static readonly HashSet<string> Paths = ["/v1/completions", "/v1/chat/completions", "/v1/models", "/v1/load_lora_adapter", "/v1/unload_lora_adapter", "/health", "/metrics"];

    static bool Authorized(HttpContext ctx, string key)
    {
        string header = ctx.Request.Headers.Authorization.ToString();
        const string bearer = "Bearer ";
        if (!header.StartsWith(bearer, StringComparison.Ordinal)) return false;
        return CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(header[bearer.Length..].Trim()), Encoding.UTF8.GetBytes(key));
    }

    static async Task Completions(HttpContext ctx, ServingContext s)
    {
        var f = await JsonFields.ReadAsync(ctx.Request.Body, ctx.RequestAborted);
        GenerationFields.RefuseUnsupported(f);
        var (name, model) = GenerationFields.Model(f, s.Catalog);
        var prompt = PromptIds(f, s);
        int? logprobs = f.Int("logprobs", 0, 20);
        var sampling = GenerationFields.Sampling(f, prompt.Count, s.ContextLength, 16, logprobs);
        var stop = f.Strings("stop", 4);
        var (stream, usage) = GenerationFields.Streaming(f);
        if (s.Gateway is { } gateway) { await Forward(ctx, s, gateway, "completions", f, name, model, prompt); return; }
        await GenerationRunner.RunAsync(ctx, s, new GenerationSpec(name, model, prompt, sampling, stop, stream, usage),
            new CompletionFormat(s.Tokenizer, logprobs is not null), "cmpl-");
    }

    static async Task Chat(HttpContext ctx, ServingContext s)
    {
        var f = await JsonFields.ReadAsync(ctx.Request.Body, ctx.RequestAborted);
        GenerationFields.RefuseUnsupported(f);
        var (name, model) = GenerationFields.Model(f, s.Catalog);
        var messages = Messages(f);
        if (s.ChatTemplate is null)
            throw ApiException.BadRequest("messages", $"model '{name}' has no chat template; use /v1/completions with a prompt");
        var prompt = Encode(s, Render(s, name, messages), "messages", addBos: false);   // the template writes BOS itself, as `amalgam generate --chat` encodes it
        bool logprobs = f.Bool("logprobs") ?? false;
        int? top = f.Int("top_logprobs", 0, 20);
        if (top is not null && !logprobs) throw ApiException.BadRequest("top_logprobs", "needs logprobs: true");
        var sampling = GenerationFields.Sampling(f, prompt.Count, s.ContextLength, null, logprobs ? top ?? 0 : null);
        var stop = f.Strings("stop", 4);
        var (stream, usage) = GenerationFields.Streaming(f);
        if (s.Gateway is { } gateway) { await Forward(ctx, s, gateway, "chat/completions", f, name, model, prompt); return; }
        await GenerationRunner.RunAsync(ctx, s, new GenerationSpec(name, model, prompt, sampling, stop, stream, usage),
            new ChatFormat(s.Tokenizer, logprobs), "chatcmpl-");
    }

    // Gateway mode: a router's request goes to its most weighted expert (an upstream serves one adapter per
    // request); the base and adapters go as they are; other strategies answer only here, so they are refused.
    static async Task Forward(HttpContext ctx, ServingContext s, UpstreamGateway gateway, string endpoint, JsonFields f, string name, IServedModel model, IReadOnlyList<long> prompt)
    {
        string target = name;
        if (model is StrategyServedModels.Router)
        {
            ExpertPlan plan;
            try { plan = await s.Engine.PlanAsync(model, prompt); }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException) { throw ApiException.BadRequest("model", $"model '{name}': {e.Message}"); }
            var weights = plan.Aggregation == ExpertAggregation.Outputs
                ? plan.Rows.Select((r, i) => (Name: r.Keys.Single(), Weight: plan.OutputWeights![i]))
                : plan.Rows[0].Select(w => (Name: w.Key, w.Value));
            string chosen = weights.OrderByDescending(w => w.Item2).ThenBy(w => w.Name, StringComparer.Ordinal).First().Name;
            target = chosen[(name.Length + 1)..];   // NAME/expert → the expert's own name, as the upstream serves it
        }
        else if (model.Kind is not ("base" or "adapter"))
            throw ApiException.BadRequest("model", $"in gateway mode '{name}' ({model.Kind}) cannot be forwarded: the upstream serves one adapter per request; routers, the base and adapters can");
        await gateway.ForwardAsync(ctx, endpoint, f.Root, target);
    }

    // A string (encoded with bos, as `amalgam generate` does), an array of one string, or an array of token ids.
    static IReadOnlyList<long> PromptIds(JsonFields f, ServingContext s)
    {
        var p = f.Get("prompt") ?? throw ApiException.BadRequest("prompt", "is required");
        if (p.ValueKind == JsonValueKind.String) return Encode(s, p.GetString()!, "prompt");
        if (p.ValueKind != JsonValueKind.Array) throw ApiException.BadRequest("prompt", "must be a string, an array of one string, or an array of token ids");
        var items = p.EnumerateArray().ToList();
        if (items.Count == 1 && items[0].ValueKind == JsonValueKind.String) return Encode(s, items[0].GetString()!, "prompt");
        if (items.Count == 0) throw ApiException.BadRequest("prompt", "must not be empty");
        if (items.All(i => i.ValueKind == JsonValueKind.String)) throw ApiException.BadRequest("prompt", "only one prompt per request is supported");
        var ids = new List<long>();
        foreach (var i in items)
        {
            if (i.ValueKind != JsonValueKind.Number || !i.TryGetInt64(out var id)) throw ApiException.BadRequest("prompt", "must be a string or an array of integer token ids");
            if (id < 0 || id >= s.Tokenizer.VocabSize) throw ApiException.BadRequest("prompt", $"token id {id} is outside the vocabulary (0..{s.Tokenizer.VocabSize - 1})");
            ids.Add(id);
        }
        return ids;
    }

    static string Render(ServingContext s, string model, IReadOnlyList<ChatMessage> messages)
    {
        try { return s.ChatTemplate!(messages); }
        catch (Exception e) when (e is Tokenizers.ChatTemplates.TemplateException or InvalidDataException)
        {
            throw ApiException.BadRequest("messages", $"model '{model}': the chat template refused the messages: {e.Message}");
        }
    }

    static IReadOnlyList<long> Encode(ServingContext s, string text, string field, bool addBos = true)
    {
        var ids = s.Tokenizer.Encode(text, addBos).Select(i => (long)i).ToList();
        if (ids.Count == 0) throw ApiException.BadRequest(field, "encodes to no tokens");
        return ids;
    }

    static IReadOnlyList<ChatMessage> Messages(JsonFields f)
    {
        var m = f.Get("messages") ?? throw ApiException.BadRequest("messages", "is required");
        if (m.ValueKind != JsonValueKind.Array || m.GetArrayLength() == 0) throw ApiException.BadRequest("messages", "must be a non-empty array");
        var list = new List<ChatMessage>();
        int i = 0;
        foreach (var e in m.EnumerateArray())
        {
            string at = $"messages[{i++}]";
            if (e.ValueKind != JsonValueKind.Object) throw ApiException.BadRequest(at, "must be an object");
            var fields = new JsonFields(e);
            string role = fields.String("role") ?? throw ApiException.BadRequest($"{at}.role", "is required");
            if (role is not ("system" or "developer" or "user" or "assistant")) throw ApiException.BadRequest($"{at}.role", $"'{role}' is not supported (system, developer, user, assistant)");
            string content = fields.Get("content") switch
            {
                null => "",
                { ValueKind: JsonValueKind.String } c => c.GetString()!,
                { ValueKind: JsonValueKind.Array } parts => string.Concat(parts.EnumerateArray().Select(part =>
                    part.ValueKind == JsonValueKind.Object && part.TryGetProperty("type", out var t) && t.GetString() == "text" && part.TryGetProperty("text", out var x) && x.ValueKind == JsonValueKind.String
                        ? x.GetString() : throw ApiException.BadRequest($"{at}.content", "only text parts are supported"))),
                _ => throw ApiException.BadRequest($"{at}.content", "must be a string or an array of text parts"),
            };
            list.Add(new ChatMessage(role, content));
        }
        return list;
    }

    static JsonObject Models(ServingContext s)
    {
        var data = new JsonArray();
        foreach (var (id, kind, dir) in s.Catalog.List())
            data.Add(new JsonObject
            {
                ["id"] = id,
                ["object"] = "model",
                ["created"] = Started,
                ["owned_by"] = "amalgam",
                ["root"] = dir,
                ["parent"] = kind == "base" ? null : s.Catalog.BaseId,
                ["kind"] = kind,
                ["max_model_len"] = s.ContextLength,
            });
        return new JsonObject { ["object"] = "list", ["data"] = data };
    }

    static readonly long Started = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    static async Task LoadAdapter(HttpContext ctx, ServingContext s)
    {
        var f = await JsonFields.ReadAsync(ctx.Request.Body, ctx.RequestAborted);
        string name = f.RequiredString("lora_name"), path = f.RequiredString("lora_path");
        if (name.Length == 0) throw ApiException.BadRequest("lora_name", "must not be empty");
        if (s.Catalog.List().Any(m => m.Id == name)) throw ApiException.BadRequest("lora_name", $"the name '{name}' is already served");
        try
        {
            await s.Engine.LoadAdapterAsync(name, path);
        }
        catch (Exception e) when (e is IOException or ArgumentException or InvalidDataException or InvalidOperationException or UnauthorizedAccessException)
        {
            throw ApiException.BadRequest(e.Message.StartsWith("lora_name:") ? "lora_name" : "lora_path", e.Message.StartsWith("lora_name:") ? e.Message["lora_name: ".Length..] : e.Message);
        }
        s.Catalog.AddAdapter(name, path);
        await ctx.Response.WriteAsync($"Success: LoRA adapter '{name}' added successfully.");
    }

    static async Task UnloadAdapter(HttpContext ctx, ServingContext s)
    {
        var f = await JsonFields.ReadAsync(ctx.Request.Body, ctx.RequestAborted);
        string name = f.RequiredString("lora_name");
        if (!s.Catalog.RemoveAdapter(name)) throw new ApiException(404, "lora_name", $"lora_name: no adapter named '{name}' is loaded", "model_not_found");
        await s.Engine.UnloadAdapterAsync(name);
        await ctx.Response.WriteAsync($"Success: LoRA adapter '{name}' removed successfully.");
    }
}
