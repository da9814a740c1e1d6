using System.ClientModel;
using System.Net;
using System.Text;
using System.Text.Json;
using Amalgam.Tests.Cli;
using OpenAI.Chat;

namespace Amalgam.Tests.Serving;

/// <summary>The OpenAI .NET SDK against `amalgam serve` on the bundled suite: every answer equals greedy decoding alone.</summary>
[Collection(nameof(ServingCollection))]
public sealed class ServingApiTests(ServingFixture f)
{
    [Fact]
    public void CompletionsEqualAmalgamGenerateForTheBaseAndAnAdapter()
    {
        string prompt = ServingFixture.Prompt("reverse_word");
        foreach (var (model, adapterArgs) in new[] { ("base", Array.Empty<string>()), ("reverse_word", new[] { "--adapter", ServingFixture.ExpertDir("reverse_word") }) })
        {
            var cli = CliRunner.Run(["generate", "--model", ServingFixture.BaseDir, .. adapterArgs, "--prompt", prompt, "--max-new-tokens", "12"]);
            Assert.True(cli.ExitCode == 0, cli.Stderr);
            var answer = ServingFixture.Json(f.Post("completions", new { model, prompt, max_tokens = 12, temperature = 0 }));
            Assert.Equal(cli.Stdout.TrimEnd('\n'), answer.GetProperty("choices")[0].GetProperty("text").GetString());
            Assert.Equal("text_completion", answer.GetProperty("object").GetString());
            var usage = answer.GetProperty("usage");
            Assert.Equal(f.Tokenizer.Encode(prompt, true).Count, usage.GetProperty("prompt_tokens").GetInt32());
        }
        Assert.Equal("nedrag", f.Complete(new { model = "reverse_word", prompt = "Spell the word \"garden\" backwards.\nAnswer: ", max_tokens = 12, temperature = 0 }));
    }

    [Fact]
    public void StreamedCompletionIsTheSameTextAndEndsWithDone()
    {
        string prompt = ServingFixture.Prompt("uppercase");
        string whole = f.Complete(new { model = "uppercase", prompt, max_tokens = 20, temperature = 0 });
        var result = f.Post("completions", new { model = "uppercase", prompt, max_tokens = 20, temperature = 0, stream = true, stream_options = new { include_usage = true } });
        Assert.StartsWith("text/event-stream", result.GetRawResponse().Headers.TryGetValue("Content-Type", out var type) ? type : "");
        var events = ServingFixture.Utf8(result.GetRawResponse().Content).Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.All(events, e => Assert.StartsWith("data: ", e));
        Assert.Equal("data: [DONE]", events[^1]);
        var chunks = events[..^1].Select(e => JsonDocument.Parse(e["data: ".Length..]).RootElement).ToList();
        var withChoices = chunks.Where(c => c.GetProperty("choices").GetArrayLength() > 0).ToList();
        Assert.Equal(whole, string.Concat(withChoices.Select(c => c.GetProperty("choices")[0].GetProperty("text").GetString())));
        Assert.Equal(f.Generate("uppercase", prompt, 20), whole);
        Assert.Contains(withChoices[^1].GetProperty("choices")[0].GetProperty("finish_reason").GetString(), new[] { "stop", "length" });
        Assert.True(chunks[^1].GetProperty("usage").GetProperty("completion_tokens").GetInt32() > 0);
    }

    [Fact]
    public void ChatAndStreamedChatThroughTheSdkEqualGreedyDecodingOfTheRenderedPrompt()
    {
        string question = ServingFixture.Prompt("capitalize");
        var chat = f.Client.GetChatClient("capitalize");
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 16 };
        ChatCompletion answer = chat.CompleteChat([new UserChatMessage(question)], options);
        string expected = f.GenerateChat("capitalize", ServingFixture.RenderChat([new("user", question)]), 16);
        Assert.Equal(expected, answer.Content[0].Text);
        Assert.Equal(ChatMessageRole.Assistant, answer.Role);
        Assert.True(answer.Usage.OutputTokenCount > 0);

        var streamed = new StringBuilder();
        foreach (var update in chat.CompleteChatStreaming([new UserChatMessage(question)], options))
            foreach (var part in update.ContentUpdate) streamed.Append(part.Text);
        Assert.Equal(expected, streamed.ToString());
    }

    [Fact]
    public void ModelsListTheBaseAndEveryAdapterWithTheBaseAsParent()
    {
        var models = f.Client.GetOpenAIModelClient().GetModels().Value;
        Assert.Equal(["base", .. ServingFixture.Experts.Order(StringComparer.Ordinal)], models.Select(m => m.Id).Where(id => id == "base" || ServingFixture.Experts.Contains(id)));
        var raw = ServingFixture.Json(f.Client.GetOpenAIModelClient().GetModels(new System.ClientModel.Primitives.RequestOptions()));
        foreach (var m in raw.GetProperty("data").EnumerateArray())
            Assert.Equal(m.GetProperty("id").GetString() == "base" ? null : "base", m.GetProperty("parent").GetString());
    }

    [Fact]
    public void AnAdapterLoadedAtRunTimeAnswersAndIsGoneAfterUnloading()
    {
        string prompt = ServingFixture.Prompt("last_item");
        var loaded = f.Post("load_lora_adapter", new { lora_name = "late", lora_path = ServingFixture.ExpertDir("last_item") });
        Assert.Equal(200, loaded.GetRawResponse().Status);
        Assert.Equal(f.Generate("last_item", prompt, 12), f.Complete(new { model = "late", prompt, max_tokens = 12, temperature = 0 }));
        Assert.Contains(f.Client.GetOpenAIModelClient().GetModels().Value, m => m.Id == "late");
        Assert.Equal(400, f.Post("load_lora_adapter", new { lora_name = "late", lora_path = ServingFixture.ExpertDir("last_item") }).GetRawResponse().Status);

        Assert.Equal(200, f.Post("unload_lora_adapter", new { lora_name = "late" }).GetRawResponse().Status);
        var gone = f.Post("completions", new { model = "late", prompt, max_tokens = 4 });
        Assert.Equal(404, gone.GetRawResponse().Status);
        Assert.Equal("model", ServingFixture.Json(gone).GetProperty("error").GetProperty("param").GetString());
        Assert.Equal(404, f.Post("unload_lora_adapter", new { lora_name = "late" }).GetRawResponse().Status);
        var bad = f.Post("load_lora_adapter", new { lora_name = "broken", lora_path = "/nonexistent/adapter" });
        Assert.Equal(400, bad.GetRawResponse().Status);
        Assert.Equal("lora_path", ServingFixture.Json(bad).GetProperty("error").GetProperty("param").GetString());
    }

    [Fact]
    public async Task EightConcurrentRequestsToEightExpertsEachGetWhatTheyGetAlone()
    {
        var prompts = ServingFixture.Experts.Select(ServingFixture.Prompt).ToArray();
        int Length(int i) => 16 - i / 8 * 6;
        var alone = Enumerable.Range(0, 16).Select(i => f.Reference(prompts[i % 8], Length(i), [(ServingFixture.Experts[i % 8], 1.0)])).ToArray();
        // Twice over with different lengths, so that requests join and leave a running batch at different steps.
        var answers = await Task.WhenAll(Enumerable.Range(0, 16).Select(i => Task.Run(() => f.CompleteWithLogprobs(ServingFixture.Experts[i % 8], prompts[i % 8], Length(i)))));
        for (int i = 0; i < 16; i++) ServingFixture.AssertSameAnswer(alone[i], answers[i]);
    }

    [Fact]
    public async Task AdapterMixesEqualTheDenseFoldedMergeAndShareTheBatchWithTheBase()
    {
        string prompt = ServingFixture.Prompt("first_letter");
        var mixes = new (string, double)[][] { [("first_letter", 0.7), ("uppercase", 0.3)], [("first_letter", 0.4), ("uppercase", 0.4), ("capitalize", 0.5)], [], [("first_letter", 1.0)] };
        var expected = mixes.Select(m => f.Reference(prompt, 12, m)).ToArray();
        var answers = await Task.WhenAll(mixes.Select((m, i) => Task.Run(() => i switch
        {
            2 => f.CompleteWithLogprobs("base", prompt, 12),
            3 => f.CompleteWithLogprobs("first_letter", prompt, 12),
            _ => f.CompleteWithLogprobs("base", prompt, 12, m.ToDictionary(x => x.Item1, x => x.Item2)),
        })));
        for (int i = 0; i < mixes.Length; i++) ServingFixture.AssertSameAnswer(expected[i], answers[i]);
    }

    [Fact]
    public void SameSeedSameTokensAndLogprobsAreLogProbabilities()
    {
        string prompt = ServingFixture.Prompt("add_ten");
        object Body(int seed) => new { model = "add_ten", prompt, max_tokens = 12, temperature = 1.0, top_p = 0.9, seed, logprobs = 3 };
        var a = ServingFixture.Json(f.Post("completions", Body(7)));
        var b = ServingFixture.Json(f.Post("completions", Body(7)));
        Assert.Equal(a.GetProperty("choices")[0].GetProperty("text").GetString(), b.GetProperty("choices")[0].GetProperty("text").GetString());
        var lp = a.GetProperty("choices")[0].GetProperty("logprobs");
        var values = lp.GetProperty("token_logprobs").EnumerateArray().Select(v => v.GetDouble()).ToList();
        Assert.Equal(a.GetProperty("usage").GetProperty("completion_tokens").GetInt32(), values.Count);
        Assert.All(values, v => Assert.True(v <= 0));
        foreach (var top in lp.GetProperty("top_logprobs").EnumerateArray())
        {
            var alternatives = top.EnumerateObject().Select(p => p.Value.GetDouble()).ToList();
            Assert.InRange(alternatives.Count, 1, 3);
            Assert.True(alternatives.Sum(Math.Exp) <= 1 + 1e-9);
        }

        // Greedy logprobs: the chosen token is the most likely one.
        var greedy = ServingFixture.Json(f.Post("completions", new { model = "add_ten", prompt, max_tokens = 6, temperature = 0, logprobs = 1 }))
            .GetProperty("choices")[0].GetProperty("logprobs");
        var chosen = greedy.GetProperty("token_logprobs").EnumerateArray().Select(v => v.GetDouble()).ToList();
        var best = greedy.GetProperty("top_logprobs").EnumerateArray().Select(t => t.EnumerateObject().First().Value.GetDouble()).ToList();
        Assert.Equal(best, chosen);
    }

    [Fact]
    public void StopStringsEndTheTextBeforeThem()
    {
        string prompt = "Spell the word \"garden\" backwards.\nAnswer: ";
        var answer = ServingFixture.Json(f.Post("completions", new { model = "reverse_word", prompt, max_tokens = 12, temperature = 0, stop = new[] { "dr", "zz" } }));
        Assert.Equal("ne", answer.GetProperty("choices")[0].GetProperty("text").GetString());
        Assert.Equal("stop", answer.GetProperty("choices")[0].GetProperty("finish_reason").GetString());

        // ignore_eos: past the end of sequence ("nedrag" is 6 tokens) up to max_tokens.
        var longer = ServingFixture.Json(f.Post("completions", new { model = "reverse_word", prompt, max_tokens = 9, temperature = 0, ignore_eos = true }));
        Assert.Equal(9, longer.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal("length", longer.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.StartsWith("nedrag", longer.GetProperty("choices")[0].GetProperty("text").GetString());
    }
}

[CollectionDefinition(nameof(ServingCollection))]
public sealed class ServingCollection : ICollectionFixture<ServingFixture>;
