using System.ClientModel;
using System.ClientModel.Primitives;
using System.Text;
using System.Text.Json;
using Amalgam.Experts;
using Amalgam.Models;
using Amalgam.Serving;
using Amalgam.Serving.Engine;
using Amalgam.Tokenizers;
using OpenAI;

namespace Amalgam.Tests.Serving;

/// <summary>
/// One server on loopback (a free port) serving the bundled suite's base and 8 of its experts, the OpenAI SDK
/// client pointed at it, and a second copy of the base for references: greedy decoding as `amalgam generate` does
/// it (the adapter attached, one prompt alone).
/// </summary>
public sealed class ServingFixture : IAsyncLifetime
{
    public static readonly string[] Experts = ["reverse_word", "uppercase", "capitalize", "first_letter", "last_letter", "add_ten", "repeat_word", "first_item"];

    public static string Suite => Path.Combine(TestData.RepoRoot, "suite");
    public static string BaseDir => Path.Combine(Suite, "base");
    public static string ExpertDir(string name) => Path.Combine(Suite, "experts", name);

    /// <summary>The first test prompt of a task, as the suite's scorer writes it.</summary>
    public static string Prompt(string task)
    {
        var line = File.ReadLines(Path.Combine(Suite, "data", task, "test.jsonl")).First();
        return JsonDocument.Parse(line).RootElement.GetProperty("input").GetString() + "\nAnswer: ";
    }

    /// <summary>The test chat template: the messages' contents, one per line (encoded as it is: no BOS).</summary>
    public static string RenderChat(IReadOnlyList<Amalgam.Serving.Api.ChatMessage> messages) => string.Join("\n", messages.Select(m => m.Content));

    public AmalgamServer Server { get; private set; } = null!;
    public OpenAIClient Client { get; private set; } = null!;
    public ITextTokenizer Tokenizer { get; } = TokenizerLoader.Load(BaseDir);
    private CausalLM reference = null!;
    private readonly object gate = new();

    public async Task InitializeAsync()
    {
        Server = await AmalgamServer.StartAsync(new ServeOptions(BaseDir)
        {
            Adapters = Experts.Select(e => (e, ExpertDir(e))).ToList(),
            Port = 0,
            Engine = new EngineOptions(MaxBatch: 32, MaxQueue: 64),
            ChatRenderer = RenderChat,
        });
        Client = ClientFor(Server);
        reference = CheckpointLoader.Load(BaseDir);
    }

    public static OpenAIClient ClientFor(AmalgamServer server, string key = "unused") =>
        new(new ApiKeyCredential(key), new OpenAIClientOptions { Endpoint = V1(server) });

    public static Uri V1(AmalgamServer server) => new(server.Address, "v1");

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        reference.Dispose();
    }

    /// <summary>What `amalgam generate` answers: greedy, the adapter attached (none: the base), the prompt alone.</summary>
    public string Generate(string? adapter, string prompt, int maxNewTokens) => Reference(prompt, maxNewTokens, adapter is null ? [] : [(adapter, 1.0)]).Text;

    /// <summary>What `amalgam generate --chat` answers for a rendered chat: the text encoded as it is (the template writes BOS, if any).</summary>
    public string GenerateChat(string adapter, string rendered, int maxNewTokens) => Reference(rendered, maxNewTokens, [(adapter, 1.0)], addBos: false).Text;

    public string Generate(string prompt, int maxNewTokens, IReadOnlyList<(string Adapter, double Weight)> mix) => Reference(prompt, maxNewTokens, mix).Text;

    /// <summary>
    /// Greedy decoding on the base with W + Σ wₖ·ΔWₖ folded in (dense), the prompt alone: the independent reference
    /// for adapters and mixes. Also each generated token's log-probability, from one teacher-forced forward.
    /// </summary>
    public (string Text, double[] Logprobs) Reference(string prompt, int maxNewTokens, IReadOnlyList<(string Adapter, double Weight)> mix, bool addBos = true)
    {
        lock (gate)
        {
            using var model = mix.Count == 0 ? null : CheckpointLoader.Load(BaseDir);
            var target = model ?? reference;
            foreach (var (name, weight) in mix)
            {
                using var adapter = LoraAdapter.Load(ExpertDir(name), target);
                foreach (var (module, delta) in adapter.Deltas) target.Linears[module].Fold(delta with { Scale = delta.Scale * weight });
            }
            var ids = Tokenizer.Encode(prompt, addBos).Select(i => (long)i).ToList();
            var output = GreedyDecoder.Generate(target, [ids], maxNewTokens, GenerationDefaults.StopTokens(Tokenizer, target.Config), GenerationDefaults.PadId(Tokenizer, target.Config))[0];
            using var logits = target.Logits([.. ids, .. output]);
            using var logp = TorchSharp.torch.nn.functional.log_softmax(logits, -1);
            var logprobs = output.Select((t, i) => logp[ids.Count - 1 + i, t].item<float>()).Select(x => (double)x).ToArray();
            return (Tokenizer.Decode(output.Select(i => (int)i)), logprobs);
        }
    }

    /// <summary>A completion's text and token log-probabilities (greedy, logprobs = 1).</summary>
    public (string Text, double[] Logprobs) CompleteWithLogprobs(object model, string prompt, int maxTokens, IReadOnlyDictionary<string, double>? adapters = null)
    {
        var body = adapters is null
            ? (object)new { model, prompt, max_tokens = maxTokens, temperature = 0, logprobs = 1 }
            : new { model, prompt, max_tokens = maxTokens, temperature = 0, logprobs = 1, adapters };
        var choice = Json(Post("completions", body)).GetProperty("choices")[0];
        return (choice.GetProperty("text").GetString()!, choice.GetProperty("logprobs").GetProperty("token_logprobs").EnumerateArray().Select(v => v.GetDouble()).ToArray());
    }

    /// <summary>Same tokens, and log-probabilities within float32 noise of the reference's.</summary>
    public static void AssertSameAnswer((string Text, double[] Logprobs) expected, (string Text, double[] Logprobs) actual)
    {
        Assert.Equal(expected.Text, actual.Text);
        Assert.Equal(expected.Logprobs.Length, actual.Logprobs.Length);
        for (int i = 0; i < expected.Logprobs.Length; i++) Assert.True(Math.Abs(expected.Logprobs[i] - actual.Logprobs[i]) < 2e-4, $"token {i}: logprob {actual.Logprobs[i]} vs reference {expected.Logprobs[i]}");
    }

    /// <summary>POSTs a JSON body through the SDK's pipeline (its endpoint, key and retry policy).</summary>
    public static ClientResult Post(OpenAIClient client, Uri endpoint, string path, object body, bool buffer = true)
    {
        var message = client.Pipeline.CreateMessage();
        message.Request.Method = "POST";
        message.Request.Uri = new Uri(endpoint + "/" + path);
        message.Request.Headers.Set("Content-Type", "application/json");
        message.Request.Content = BinaryContent.Create(BinaryData.FromString(body as string ?? JsonSerializer.Serialize(body)));
        message.BufferResponse = buffer;
        message.ResponseClassifier = PipelineMessageClassifier.Create([200]);
        client.Pipeline.Send(message);
        return ClientResult.FromResponse(message.ExtractResponse()!);
    }

    public ClientResult Post(string path, object body) => Post(Client, V1(Server), path, body);

    public static JsonElement Json(ClientResult result) => JsonDocument.Parse(result.GetRawResponse().Content.ToString()).RootElement;

    /// <summary>A completion's text through the SDK's pipeline.</summary>
    public string Complete(object body) => Json(Post("completions", body)).GetProperty("choices")[0].GetProperty("text").GetString()!;

    public static string Utf8(BinaryData data) => Encoding.UTF8.GetString(data.ToArray());
}
