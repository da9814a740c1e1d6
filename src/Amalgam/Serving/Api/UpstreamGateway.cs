using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace Amalgam.Serving.Api;

/// <summary>
/// Gateway mode (<c>--upstream URL</c>): a request is routed here (a served router's plan picks its expert) and
/// forwarded to an OpenAI-compatible server (vLLM, LoRAX, another Amalgam) with <c>model</c> set to the chosen
/// adapter's name; the upstream's answer, streamed or whole, is passed through as it comes. An upstream that cannot
/// be reached or answers with an error becomes a 502 whose message names the upstream.
/// </summary>
public sealed class UpstreamGateway : IDisposable
{
    private readonly HttpClient http = new() { Timeout = Timeout.InfiniteTimeSpan };   // a stream lasts as long as generation

    /// <param name="upstream">the upstream's address, with or without the trailing <c>/v1</c></param>
    public UpstreamGateway(Uri upstream)
    {
        string root = upstream.ToString().TrimEnd('/');
        if (root.EndsWith("/v1", StringComparison.Ordinal)) root = root[..^3];
        Upstream = new Uri(root + "/");
    }

    /// <summary>The upstream's root address.</summary>
    public Uri Upstream { get; }

    /// <summary>
    /// Sends <paramref name="body"/> with <c>model</c> = <paramref name="model"/> to the upstream's
    /// <c>v1/<paramref name="endpoint"/></c> and copies its answer to the client (the header
    /// <c>x-amalgam-upstream-model</c> says which model answered).
    /// </summary>
    public async Task ForwardAsync(HttpContext ctx, string endpoint, JsonElement body, string model)
    {
        var forwarded = JsonNode.Parse(body.GetRawText())!.AsObject();
        forwarded["model"] = model;
        forwarded.Remove("adapters");   // Amalgam's extension; an upstream serves one adapter per request
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(Upstream, "v1/" + endpoint))
        {
            Content = new StringContent(forwarded.ToJsonString(), Encoding.UTF8, "application/json"),
        };
        if (ctx.Request.Headers.Authorization.ToString() is { Length: > 0 } auth) request.Headers.TryAddWithoutValidation("Authorization", auth);
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ctx.RequestAborted);
        }
        catch (HttpRequestException e)
        {
            throw Failed($"cannot be reached ({e.Message})");
        }
        using (response)
        {
            if (!response.IsSuccessStatusCode)
            {
                string text = await response.Content.ReadAsStringAsync(ctx.RequestAborted);
                throw Failed($"answered {(int)response.StatusCode} for model '{model}': {UpstreamMessage(text)}");
            }
            ctx.Response.StatusCode = 200;
            ctx.Response.ContentType = response.Content.Headers.ContentType?.ToString() ?? "application/json";
            ctx.Response.Headers["x-amalgam-upstream-model"] = model;
            if (response.Content.Headers.ContentType?.MediaType == "text/event-stream") ctx.Response.Headers.CacheControl = "no-cache";
            await using var from = await response.Content.ReadAsStreamAsync(ctx.RequestAborted);
            var buffer = new byte[8192];
            int n;
            while ((n = await from.ReadAsync(buffer, ctx.RequestAborted)) > 0)
            {
                await ctx.Response.Body.WriteAsync(buffer.AsMemory(0, n), ctx.RequestAborted);
                await ctx.Response.Body.FlushAsync(ctx.RequestAborted);   // server-sent events pass through as they come
            }
        }
    }

    ApiException Failed(string what) => new(502, null, $"upstream {Upstream}: {what}", "bad_gateway", "upstream_error");

    // The upstream's own error message when it sent an OpenAI-style body, else the start of its body.
    static string UpstreamMessage(string text)
    {
        try
        {
            if (JsonNode.Parse(text)?["error"]?["message"]?.GetValue<string>() is { } m) return m;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException) { }
        return text.Length > 200 ? text[..200] + "…" : text;
    }

    public void Dispose() => http.Dispose();
}
