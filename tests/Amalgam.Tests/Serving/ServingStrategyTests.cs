using System.Text.Json;
using Amalgam.Serving;
using Amalgam.Strategies.Saved;
using Amalgam.Tests.Cli;

namespace Amalgam.Tests.Serving;

/// <summary>
/// Saved strategy folders served: routers (top-1, top-2 by parameters, top-2 by outputs, a subset), an ensemble, a
/// folded merge and Twin-Merging each answer exactly as `amalgam generate --strategy DIR`, alone and all at once
/// in the shared batch; Arrow and a strategy of another base are refused in one line.
/// </summary>
public sealed class ServingStrategyTests(ServingStrategyFixture f) : IClassFixture<ServingStrategyFixture>
{
    const int MaxTokens = 10;

    string Complete(string model, string prompt) =>
        ServingFixture.Json(ServingFixture.Post(ServingFixture.ClientFor(f.Server), ServingFixture.V1(f.Server), "completions",
            new { model, prompt, max_tokens = MaxTokens, temperature = 0 })).GetProperty("choices")[0].GetProperty("text").GetString()!;

    [Fact]
    public void EveryStrategyAnswersAsAmalgamGenerateStrategyThroughTheSdkPipeline()
    {
        foreach (var (name, _) in ServingStrategyFixture.Strategies)
        {
            // The CLI itself for the first prompt; the same computation in-process for the others.
            string first = ServingStrategyFixture.Prompts[0];
            var cli = CliRunner.Run(["generate", "--strategy", f.StrategyDir(name), "--prompt", first, "--max-new-tokens", MaxTokens.ToString()]);
            Assert.True(cli.ExitCode == 0, cli.Stderr);
            Assert.Equal(cli.Stdout.TrimEnd('\n'), Complete(name, first));
            foreach (var prompt in ServingStrategyFixture.Prompts.Skip(1))
                Assert.Equal(f.Generate(name, prompt, MaxTokens), Complete(name, prompt));
        }
    }

    [Fact]
    public void ChatAndStreamedChatThroughTheSdkAnswerForEveryStrategyAsTheCompletionOfTheRenderedIds()
    {
        string question = ServingStrategyFixture.Prompts[2];
        var ids = f.Tokenizer.Encode(ServingFixture.RenderChat([new("user", question)]), addBos: false).Select(i => (long)i).ToArray();
        var options = new OpenAI.Chat.ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = MaxTokens };
        foreach (var (name, _) in ServingStrategyFixture.Strategies)
        {
            string expected = ServingFixture.Json(ServingFixture.Post(ServingFixture.ClientFor(f.Server), ServingFixture.V1(f.Server), "completions",
                new { model = name, prompt = ids, max_tokens = MaxTokens, temperature = 0 })).GetProperty("choices")[0].GetProperty("text").GetString()!;
            var chat = ServingFixture.ClientFor(f.Server).GetChatClient(name);
            Assert.Equal(expected, chat.CompleteChat([new OpenAI.Chat.UserChatMessage(question)], options).Value.Content[0].Text);
            var streamed = new System.Text.StringBuilder();
            foreach (var update in chat.CompleteChatStreaming([new OpenAI.Chat.UserChatMessage(question)], options))
                foreach (var part in update.ContentUpdate) streamed.Append(part.Text);
            Assert.Equal(expected, streamed.ToString());
        }
    }

    [Fact]
    public async Task AllStrategiesAtOnceInTheSharedBatchGetWhatTheyGetAlone()
    {
        var cases = ServingStrategyFixture.Strategies.SelectMany(s => ServingStrategyFixture.Prompts.Select(p => (Model: s.Name, Prompt: p)))
            .Concat(ServingStrategyFixture.Experts.Select((e, k) => (Model: e, Prompt: ServingStrategyFixture.Prompts[k])))
            .Append((Model: "base", Prompt: ServingStrategyFixture.Prompts[0])).ToList();
        var alone = cases.Select(c => Complete(c.Model, c.Prompt)).ToList();
        var together = await Task.WhenAll(cases.Select(c => Task.Run(() => Complete(c.Model, c.Prompt))));
        Assert.Equal(alone, together);
        // The routers route: not every prompt goes to the same experts.
        Assert.NotEqual(Complete("router-top1", ServingStrategyFixture.Prompts[0]), Complete("router-top1", ServingStrategyFixture.Prompts[1]));
    }

    [Fact]
    public void ModelsListEveryStrategyWithItsKindAndTheBaseAsParent()
    {
        var data = ServingFixture.Json(ServingFixture.ClientFor(f.Server).GetOpenAIModelClient().GetModels(new System.ClientModel.Primitives.RequestOptions())).GetProperty("data");
        foreach (var (name, kind) in ServingStrategyFixture.Strategies)
        {
            var m = Assert.Single(data.EnumerateArray(), m => m.GetProperty("id").GetString() == name);
            Assert.Equal(kind, m.GetProperty("kind").GetString());
            Assert.Equal("base", m.GetProperty("parent").GetString());
        }
        Assert.DoesNotContain(data.EnumerateArray(), m => m.GetProperty("id").GetString()!.Contains('/'));   // the strategies' own expert copies are internal
    }

    [Fact]
    public async Task ArrowAForeignBaseAndABrokenFolderAreRefusedInOneLine()
    {
        var arrow = await Assert.ThrowsAsync<NotSupportedException>(() => AmalgamServer.StartAsync(new ServeOptions(ServingFixture.BaseDir)
            { Strategies = [("arrow", f.StrategyDir("arrow"))], Port = 0 }));
        Assert.StartsWith("--strategy arrow: ", arrow.Message);
        Assert.Contains("per token", arrow.Message);

        string other = TestData.CopyOf("llama_gqa", f.Dir);
        var foreign = await Assert.ThrowsAsync<ArgumentException>(() => AmalgamServer.StartAsync(new ServeOptions(other)
            { Strategies = [("r", f.StrategyDir("router-top1"))], Port = 0 }));
        Assert.Equal($"--strategy r: it was fitted on the base {Path.GetFullPath(ServingFixture.BaseDir)}, which differs from --model {other}", foreign.Message);

        var r = CliRunner.Run(["serve", "--model", ServingFixture.BaseDir, "--port", "0", "--strategy", "s=" + f.Dir["nothing"]]);
        Assert.Equal(1, r.ExitCode);
        var error = Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("amalgam: error: "));
        Assert.StartsWith($"amalgam: error: --strategy s: {f.Dir["nothing"]}: no such strategy folder", error);
    }

    [Fact]
    public void AStrategyRefusesTheAdaptersMixNamingTheField()
    {
        var response = ServingFixture.Post(ServingFixture.ClientFor(f.Server), ServingFixture.V1(f.Server), "completions",
            new { model = "router-top1", prompt = "x", adapters = new Dictionary<string, double> { ["uppercase"] = 1 } }).GetRawResponse();
        Assert.Equal(400, response.Status);
        Assert.Equal("adapters", JsonDocument.Parse(response.Content.ToString()).RootElement.GetProperty("error").GetProperty("param").GetString());
    }

    [Fact]
    public async Task GatewayModeRoutesWithTheServedRouterAndForwardsToTheUpstream()
    {
        // The upstream: a second Amalgam server with the router's experts as adapters under their own names.
        await using var upstream = await AmalgamServer.StartAsync(new ServeOptions(ServingFixture.BaseDir)
        {
            Adapters = ServingStrategyFixture.Experts.Select(e => (e, ServingFixture.ExpertDir(e))).ToList(), Port = 0, ServedModelName = "base",
        });
        await using var gateway = await AmalgamServer.StartAsync(new ServeOptions(ServingFixture.BaseDir)
        {
            Strategies = [("router-top1", f.StrategyDir("router-top1")), ("router-top2-outputs", f.StrategyDir("router-top2-outputs"))],
            Adapters = [("last_item", ServingFixture.ExpertDir("last_item"))],   // not served upstream
            Port = 0, ServedModelName = "base", Upstream = ServingFixture.V1(upstream),
        });
        using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(2) };
        async Task<(int Status, string Body, string? Routed)> Send(AmalgamServer server, object body)
        {
            using var response = await http.PostAsync(new Uri(server.Address, "v1/completions"), new StringContent(JsonSerializer.Serialize(body), System.Text.Encoding.UTF8, "application/json"));
            return ((int)response.StatusCode, await response.Content.ReadAsStringAsync(),
                response.Headers.TryGetValues("x-amalgam-upstream-model", out var v) ? v.Single() : null);
        }
        static string Text(string body) => JsonDocument.Parse(body).RootElement.GetProperty("choices")[0].GetProperty("text").GetString()!;

        var routedTo = new HashSet<string>();
        foreach (var strategy in new[] { "router-top1", "router-top2-outputs" })
            foreach (var prompt in ServingStrategyFixture.Prompts)
            {
                string expected = MostWeightedExpert(strategy, prompt);
                routedTo.Add(expected);
                var (status, body, routed) = await Send(gateway, new { model = strategy, prompt, max_tokens = MaxTokens, temperature = 0 });
                Assert.Equal(200, status);
                Assert.Equal(expected, routed);
                Assert.Equal(Text((await Send(upstream, new { model = expected, prompt, max_tokens = MaxTokens, temperature = 0 })).Body), Text(body));
            }
        Assert.True(routedTo.Count > 1, "the router sends the prompts to different experts");

        // A stream passes through: the same text, ending with [DONE].
        string p0 = ServingStrategyFixture.Prompts[0];
        var (_, whole, _) = await Send(gateway, new { model = "router-top1", prompt = p0, max_tokens = MaxTokens, temperature = 0 });
        var (streamStatus, events, _) = await Send(gateway, new { model = "router-top1", prompt = p0, max_tokens = MaxTokens, temperature = 0, stream = true });
        Assert.Equal(200, streamStatus);
        var lines = events.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("data: [DONE]", lines[^1]);
        Assert.Equal(Text(whole), string.Concat(lines[..^1].Select(l => JsonDocument.Parse(l["data: ".Length..]).RootElement.GetProperty("choices"))
            .Where(c => c.GetArrayLength() > 0).Select(c => c[0].GetProperty("text").GetString())));

        // The upstream's refusal (it does not serve last_item) becomes a 502 naming the upstream; the gateway keeps serving.
        var (refused, error, _) = await Send(gateway, new { model = "last_item", prompt = p0, max_tokens = 4 });
        Assert.Equal(502, refused);
        string message = JsonDocument.Parse(error).RootElement.GetProperty("error").GetProperty("message").GetString()!;
        Assert.StartsWith($"upstream {upstream.Address}: answered 404 for model 'last_item'", message);
        Assert.Equal(200, (await Send(gateway, new { model = "base", prompt = p0, max_tokens = 2 })).Status);

        // An ensemble cannot be forwarded as one adapter: a 400 naming model.
        await using var dead = await AmalgamServer.StartAsync(new ServeOptions(ServingFixture.BaseDir)
        {
            Strategies = [("ensemble", f.StrategyDir("ensemble"))], Port = 0, ServedModelName = "base", Upstream = new Uri("http://127.0.0.1:9/v1"),
        });
        var (ensembleStatus, ensembleBody, _) = await Send(dead, new { model = "ensemble", prompt = p0, max_tokens = 2 });
        Assert.Equal(400, ensembleStatus);
        Assert.Equal("model", JsonDocument.Parse(ensembleBody).RootElement.GetProperty("error").GetProperty("param").GetString());
        // An upstream that cannot be reached: a 502 naming it.
        var (unreachable, deadBody, _) = await Send(dead, new { model = "base", prompt = p0, max_tokens = 2 });
        Assert.Equal(502, unreachable);
        Assert.StartsWith("upstream http://127.0.0.1:9/: cannot be reached", JsonDocument.Parse(deadBody).RootElement.GetProperty("error").GetProperty("message").GetString());
    }

    // The expert a router weighs most for a prompt, as its saved folder computes it alone.
    string MostWeightedExpert(string strategy, string prompt)
    {
        using var loaded = StrategyFolder.Load(f.StrategyDir(strategy));
        var router = (RouterStrategy)loaded.Strategy;
        var ids = loaded.Pool.Tokenizer.Encode(prompt, addBos: true).Select(i => (long)i).ToList();
        if (!router.RoutesByOutputs)
        {
            using var w = router.MixtureWeights(loaded.Pool, [ids]);
            return loaded.Pool.Names[(int)w.argmax(-1).item<long>()];
        }
        var (experts, weights) = router.OutputChoice(loaded.Pool, [ids]);
        using (experts)
        using (weights)
            return loaded.Pool.Names[(int)experts[0, weights.argmax(-1).item<long>()].item<long>()];
    }
}
