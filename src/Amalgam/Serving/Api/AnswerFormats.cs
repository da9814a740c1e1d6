using System.Text.Json.Nodes;
using Amalgam.Serving.Engine;
using Amalgam.Tokenizers;

namespace Amalgam.Serving.Api;

/// <summary><c>/v1/completions</c> answers (<c>text_completion</c>), with legacy logprobs when asked.</summary>
public sealed class CompletionFormat(ITextTokenizer tokenizer, bool logprobs) : IAnswerFormat
{
    public JsonObject Response(string id, long created, string model, string text, IReadOnlyList<TokenEvent> tokens, string finish, JsonObject usage) =>
        Envelope(id, created, model, text, tokens, finish, usage);

    public JsonObject? First(string id, long created, string model) => null;

    public JsonObject Chunk(string id, long created, string model, string text, IReadOnlyList<TokenEvent> tokens, string? finish) =>
        Envelope(id, created, model, text, tokens, finish, null);

    JsonObject Envelope(string id, long created, string model, string text, IReadOnlyList<TokenEvent> tokens, string? finish, JsonObject? usage)
    {
        var body = new JsonObject
        {
            ["id"] = id,
            ["object"] = "text_completion",
            ["created"] = created,
            ["model"] = model,
            ["choices"] = new JsonArray(new JsonObject
            {
                ["index"] = 0,
                ["text"] = text,
                ["logprobs"] = logprobs ? Logprobs(tokens) : null,
                ["finish_reason"] = finish,
            }),
        };
        if (usage is not null) body["usage"] = usage;
        return body;
    }

    JsonObject Logprobs(IReadOnlyList<TokenEvent> tokens)
    {
        var strings = new JsonArray();
        var values = new JsonArray();
        var tops = new JsonArray();
        var offsets = new JsonArray();
        int offset = 0;
        foreach (var t in tokens)
        {
            string s = tokenizer.Decode([(int)t.Token]);
            strings.Add(s);
            values.Add(t.Logprob);
            var top = new JsonObject();
            foreach (var (token, lp) in t.Top ?? []) top[tokenizer.Decode([(int)token])] ??= lp;
            tops.Add(top);
            offsets.Add(offset);
            offset += s.Length;
        }
        return new JsonObject { ["tokens"] = strings, ["token_logprobs"] = values, ["top_logprobs"] = tops, ["text_offset"] = offsets };
    }
}

/// <summary><c>/v1/chat/completions</c> answers (<c>chat.completion</c> and <c>chat.completion.chunk</c>).</summary>
public sealed class ChatFormat(ITextTokenizer tokenizer, bool logprobs) : IAnswerFormat
{
    public JsonObject Response(string id, long created, string model, string text, IReadOnlyList<TokenEvent> tokens, string finish, JsonObject usage) => new()
    {
        ["id"] = id,
        ["object"] = "chat.completion",
        ["created"] = created,
        ["model"] = model,
        ["choices"] = new JsonArray(new JsonObject
        {
            ["index"] = 0,
            ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = text },
            ["logprobs"] = logprobs ? Logprobs(tokens) : null,
            ["finish_reason"] = finish,
        }),
        ["usage"] = usage,
    };

    public JsonObject? First(string id, long created, string model) => Envelope(id, created, model, new JsonObject { ["role"] = "assistant", ["content"] = "" }, null, null);

    public JsonObject Chunk(string id, long created, string model, string text, IReadOnlyList<TokenEvent> tokens, string? finish) =>
        Envelope(id, created, model, finish is not null && text.Length == 0 ? new JsonObject() : new JsonObject { ["content"] = text },
            logprobs && tokens.Count > 0 ? Logprobs(tokens) : null, finish);

    static JsonObject Envelope(string id, long created, string model, JsonObject delta, JsonObject? logprobs, string? finish) => new()
    {
        ["id"] = id,
        ["object"] = "chat.completion.chunk",
        ["created"] = created,
        ["model"] = model,
        ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["delta"] = delta, ["logprobs"] = logprobs, ["finish_reason"] = finish }),
    };

    JsonObject Logprobs(IReadOnlyList<TokenEvent> tokens)
    {
        var content = new JsonArray();
        foreach (var t in tokens)
        {
            var top = new JsonArray();
            foreach (var (token, lp) in t.Top ?? []) top.Add(Entry(token, lp));
            var entry = Entry(t.Token, t.Logprob);
            entry["top_logprobs"] = top;
            content.Add(entry);
        }
        return new JsonObject { ["content"] = content };
    }

    JsonObject Entry(long token, double logprob)
    {
        string s = tokenizer.Decode([(int)token]);
        return new JsonObject { ["token"] = s, ["logprob"] = logprob, ["bytes"] = new JsonArray(System.Text.Encoding.UTF8.GetBytes(s).Select(b => (JsonNode)(int)b).ToArray()) };
    }
}
