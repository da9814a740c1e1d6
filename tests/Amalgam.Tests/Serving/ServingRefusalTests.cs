using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Amalgam.Serving;
using Amalgam.Serving.Engine;

namespace Amalgam.Tests.Serving;

/// <summary>Bad requests get a 4xx naming the field and the server keeps serving; keys, a full queue, disconnects.</summary>
[Collection(nameof(ServingCollection))]
public sealed class ServingRefusalTests(ServingFixture f)
{
    static readonly HttpClient Http = new() { Timeout = TimeSpan.FromMinutes(2) };

    static async Task<(HttpStatusCode Status, JsonElement Body, HttpResponseMessage Response)> Send(Uri server, string path, string body, string? key = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(server, path)) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (key is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        var response = await Http.SendAsync(request);
        string text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.StartsWith('{') ? JsonDocument.Parse(text).RootElement : default, response);
    }

    public static TheoryData<string, int, string?> BadRequests => new()
    {
        { """{"model": "nope", "prompt": "x"}""", 404, "model" },
        { """{"model": "base", "prompt": "x", """, 400, null },
        { """[1, 2]""", 400, null },
        { """{"prompt": "x"}""", 400, "model" },
        { """{"model": 3, "prompt": "x"}""", 400, "model" },
        { """{"model": "base"}""", 400, "prompt" },
        { """{"model": "base", "prompt": {"a": 1}}""", 400, "prompt" },
        { """{"model": "base", "prompt": [1, 5000]}""", 400, "prompt" },
        { """{"model": "base", "prompt": "x", "max_tokens": 0}""", 400, "max_tokens" },
        { """{"model": "base", "prompt": "x", "max_tokens": -3}""", 400, "max_tokens" },
        { """{"model": "base", "prompt": "x", "max_tokens": 100000}""", 400, "max_tokens" },
        { """{"model": "base", "prompt": "x", "max_tokens": "8"}""", 400, "max_tokens" },
        { """{"model": "base", "prompt": "x", "max_tokens": 2.5}""", 400, "max_tokens" },
        { """{"model": "base", "prompt": "x", "temperature": "hot"}""", 400, "temperature" },
        { """{"model": "base", "prompt": "x", "temperature": 5}""", 400, "temperature" },
        { """{"model": "base", "prompt": "x", "top_p": 0}""", 400, "top_p" },
        { """{"model": "base", "prompt": "x", "stream": "yes"}""", 400, "stream" },
        { """{"model": "base", "prompt": "x", "stop": [1]}""", 400, "stop" },
        { """{"model": "base", "prompt": "x", "seed": "s"}""", 400, "seed" },
        { """{"model": "base", "prompt": "x", "logprobs": 50}""", 400, "logprobs" },
        { """{"model": "base", "prompt": "x", "n": 2}""", 400, "n" },
        { """{"model": "base", "prompt": "x", "adapters": {"nope": 1}}""", 400, "adapters" },
        { """{"model": "base", "prompt": "x", "adapters": {"uppercase": "a"}}""", 400, "adapters.uppercase" },
        { """{"model": "base", "prompt": "x", "adapters": [1]}""", 400, "adapters" },
        { """{"model": "uppercase", "prompt": "x", "adapters": {"uppercase": 1}}""", 400, "adapters" },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task BadCompletionRequestsGetAnErrorNamingTheFieldAndTheServerKeepsServing(string body, int status, string? param)
    {
        var (code, error, _) = await Send(f.Server.Address, "v1/completions", body);
        Assert.Equal(status, (int)code);
        Assert.Equal(param, error.GetProperty("error").GetProperty("param").GetString());
        Assert.False(string.IsNullOrEmpty(error.GetProperty("error").GetProperty("message").GetString()));
        var (ok, _, _) = await Send(f.Server.Address, "v1/completions", """{"model": "base", "prompt": "x", "max_tokens": 1}""");
        Assert.Equal(HttpStatusCode.OK, ok);
    }

    public static TheoryData<string, string, int, string?> BadRequestsElsewhere => new()
    {
        { "chat/completions", """{"model": "capitalize"}""", 400, "messages" },
        { "chat/completions", """{"model": "capitalize", "messages": []}""", 400, "messages" },
        { "chat/completions", """{"model": "capitalize", "messages": [1]}""", 400, "messages[0]" },
        { "chat/completions", """{"model": "capitalize", "messages": [{"content": "x"}]}""", 400, "messages[0].role" },
        { "chat/completions", """{"model": "capitalize", "messages": [{"role": "user", "content": 5}]}""", 400, "messages[0].content" },
        { "chat/completions", """{"model": "nope", "messages": [{"role": "user", "content": "x"}]}""", 404, "model" },
        { "chat/completions", """{"model": "capitalize", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}""", 400, "max_tokens" },
        { "chat/completions", """{"model": "capitalize", "messages": [{"role": "user", "content": "x"}], "temperature": -1}""", 400, "temperature" },
        { "chat/completions", """{"model": "capitalize", "messages": [{"role": "user", "content": "x"}], "top_logprobs": 3}""", 400, "top_logprobs" },
        { "chat/completions", """{"model": "base", "messages": [{"role": "user", "content": "x"}], "adapters": {"nope": 1}}""", 400, "adapters" },
        { "chat/completions", """{"model": "capitalize", "messages": """, 400, null },
        { "chat/completions", $$"""{"model": "capitalize", "messages": [{"role": "user", "content": "{{new string('a', 300)}}"}]}""", 400, "messages" },
        { "chat/completions", """{"model": "capitalize", "messages": [{"role": "user", "content": "x"}], "max_tokens": 100000}""", 400, "max_tokens" },
        { "chat/completions", """{"model": "capitalize", "messages": [{"role": "user", "content": "x"}], "max_completion_tokens": "8"}""", 400, "max_completion_tokens" },
        { "chat/completions", """{"model": "capitalize", "messages": [{"role": "user", "content": "x"}], "stream": 1}""", 400, "stream" },
        { "load_lora_adapter", """{"lora_path": "/tmp"}""", 400, "lora_name" },
        { "load_lora_adapter", """{"lora_name": "a"}""", 400, "lora_path" },
        { "load_lora_adapter", """{"lora_name": 3, "lora_path": "/tmp"}""", 400, "lora_name" },
        { "load_lora_adapter", """{"lora_name": "b", "lora_path": "/nonexistent"}""", 400, "lora_path" },
        { "unload_lora_adapter", """{}""", 400, "lora_name" },
        { "unload_lora_adapter", """{"lora_name": "nope"}""", 404, "lora_name" },
    };

    [Theory]
    [MemberData(nameof(BadRequestsElsewhere))]
    public async Task BadChatAndAdapterRequestsGetAnErrorNamingTheFieldAndTheServerKeepsServing(string path, string body, int status, string? param)
    {
        var (code, error, _) = await Send(f.Server.Address, "v1/" + path, body);
        Assert.Equal(status, (int)code);
        Assert.Equal(param, error.GetProperty("error").GetProperty("param").GetString());
        Assert.False(string.IsNullOrEmpty(error.GetProperty("error").GetProperty("message").GetString()));
        var (ok, _, _) = await Send(f.Server.Address, "v1/chat/completions", """{"model": "base", "messages": [{"role": "user", "content": "x"}], "max_tokens": 1}""");
        Assert.Equal(HttpStatusCode.OK, ok);
    }

    [Fact]
    public async Task PromptsLongerThanTheContextAndBadChatMessagesAreRefused()
    {
        string longPrompt = JsonSerializer.Serialize(Enumerable.Repeat(5, 256).ToArray());
        var (code, error, _) = await Send(f.Server.Address, "v1/completions", $$"""{"model": "base", "prompt": {{longPrompt}}}""");
        Assert.Equal(HttpStatusCode.BadRequest, code);
        Assert.Equal("prompt", error.GetProperty("error").GetProperty("param").GetString());
        (code, error, _) = await Send(f.Server.Address, "v1/chat/completions", """{"model": "base", "messages": [{"role": "wizard", "content": "x"}]}""");
        Assert.Equal(HttpStatusCode.BadRequest, code);
        Assert.Equal("messages[0].role", error.GetProperty("error").GetProperty("param").GetString());
        (code, error, _) = await Send(f.Server.Address, "v1/chat/completions", """{"model": "base", "messages": "hi"}""");
        Assert.Equal("messages", error.GetProperty("error").GetProperty("param").GetString());
    }

    [Fact]
    public async Task WithoutAChatTemplateChatIsA400NamingMessages()
    {
        await using var server = await AmalgamServer.StartAsync(new ServeOptions(ServingFixture.BaseDir) { Port = 0 });
        var chat = ServingFixture.ClientFor(server).GetChatClient("base");
        var e = Assert.Throws<System.ClientModel.ClientResultException>(() => chat.CompleteChat([new OpenAI.Chat.UserChatMessage("hi")]));
        Assert.Equal(400, e.Status);
        Assert.Contains("no chat template", e.Message);
    }

    [Fact]
    public async Task AnApiKeyIsRequiredOnV1ButNotOnHealth()
    {
        await using var server = await AmalgamServer.StartAsync(new ServeOptions(ServingFixture.BaseDir) { Port = 0, ApiKey = "s3cret" });
        const string body = """{"model": "base", "prompt": "x", "max_tokens": 2}""";
        Assert.Equal(HttpStatusCode.Unauthorized, (await Send(server.Address, "v1/completions", body)).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await Send(server.Address, "v1/completions", body, "wrong")).Status);
        Assert.Equal(HttpStatusCode.OK, (await Send(server.Address, "v1/completions", body, "s3cret")).Status);
        Assert.Single(ServingFixture.ClientFor(server, "s3cret").GetOpenAIModelClient().GetModels().Value);
        Assert.Equal(HttpStatusCode.OK, (await Http.GetAsync(new Uri(server.Address, "health"))).StatusCode);
    }

    [Fact]
    public async Task BeyondTheQueueRequestsGet429WithRetryAfterAndEveryOtherOneIsAnswered()
    {
        await using var server = await AmalgamServer.StartAsync(new ServeOptions(ServingFixture.BaseDir) { Port = 0, Engine = new EngineOptions(MaxBatch: 1, MaxQueue: 1) });
        string body = JsonSerializer.Serialize(new { model = "base", prompt = Enumerable.Repeat(5L, 8).Prepend(2).ToArray(), max_tokens = 120, temperature = 1.0, seed = 1 });
        var results = await Task.WhenAll(Enumerable.Range(0, 12).Select(_ => Send(server.Address, "v1/completions", body)));
        Assert.All(results, r => Assert.Contains(r.Status, new[] { HttpStatusCode.OK, HttpStatusCode.TooManyRequests }));
        var refused = results.Where(r => r.Status == HttpStatusCode.TooManyRequests).ToList();
        Assert.NotEmpty(refused);
        Assert.All(refused, r => Assert.Equal("1", r.Response.Headers.RetryAfter?.ToString()));
        Assert.Contains(results, r => r.Status == HttpStatusCode.OK);
    }

    [Fact]
    public async Task AClientThatLeavesMidStreamIsCancelledAndFreed()
    {
        await using var server = await AmalgamServer.StartAsync(new ServeOptions(ServingFixture.BaseDir) { Port = 0 });
        string body = JsonSerializer.Serialize(new { model = "base", prompt = new[] { 2L, 5, 5 }, max_tokens = 250, temperature = 1.0, seed = 3, stream = true });
        using (var request = new HttpRequestMessage(HttpMethod.Post, new Uri(server.Address, "v1/completions")) { Content = new StringContent(body, Encoding.UTF8, "application/json") })
        using (var response = await Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            Assert.StartsWith("data: ", await reader.ReadLineAsync());
        }   // disposing the response closes the connection mid-stream
        double running = -1;
        for (int i = 0; i < 100 && running != 0; i++)
        {
            await Task.Delay(50);
            running = Metric(await Http.GetStringAsync(new Uri(server.Address, "metrics")), "amalgam_running_requests");
        }
        Assert.Equal(0, running);
        var (ok, _, _) = await Send(server.Address, "v1/completions", """{"model": "base", "prompt": "x", "max_tokens": 2}""");
        Assert.Equal(HttpStatusCode.OK, ok);
    }

    [Fact]
    public async Task MetricsCountRequestsTokensAndLatencies()
    {
        await Send(f.Server.Address, "v1/completions", """{"model": "base", "prompt": "x", "max_tokens": 3, "temperature": 0}""");
        string text = await Http.GetStringAsync(new Uri(f.Server.Address, "metrics"));
        Assert.True(Metric(text, "amalgam_generation_tokens_total") >= 1);
        Assert.True(Metric(text, "amalgam_prompt_tokens_total") >= 2);
        Assert.True(Metric(text, "amalgam_time_to_first_token_seconds_count") >= 1);
        foreach (var name in new[] { "amalgam_queue_depth", "amalgam_running_batch_rows", "amalgam_time_per_output_token_seconds_bucket", "amalgam_requests_total{endpoint=\"/v1/completions\",status=\"200\"}" })
            Assert.Contains(name, text);
    }

    [Fact]
    public void ServeRefusesBadOptionsInOneLine()
    {
        foreach (var args in new[] { new[] { "--strategy", "s=/tmp" }, ["--port", "70000"], ["--adapter", "a=/nonexistent/adapter"], ["--max-batch", "0"] })
        {
            var r = Amalgam.Tests.Cli.CliRunner.Run(["serve", "--model", ServingFixture.BaseDir, .. args]);
            Assert.Equal(1, r.ExitCode);
            var error = Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("amalgam: error: "));
            Assert.Contains(args[0] == "--adapter" ? "/nonexistent/adapter" : args[0], error);
        }
    }

    static double Metric(string text, string name) =>
        text.Split('\n').Where(l => l.StartsWith(name + " ")).Select(l => double.Parse(l[(name.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture)).Single();
}
