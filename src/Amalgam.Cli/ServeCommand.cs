using System.CommandLine;
using Amalgam.Serving;
using Amalgam.Serving.Engine;

namespace Amalgam.Cli;

/// <summary><c>amalgam serve</c>: an OpenAI-compatible HTTP service for a base, its adapters, mixes and saved strategies (docs/serving.md).</summary>
public static class ServeCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Base checkpoint folder (or a merged model folder).", Required = true };
        var adapter = new Option<string[]>("--adapter") { Description = "NAME=DIR: a PEFT LoRA adapter (an expert or a merged LoRA) served as model NAME; repeat." };
        var strategy = new Option<string[]>("--strategy") { Description = "NAME=DIR: a saved strategy folder served as model NAME; repeat." };
        var host = new Option<string>("--host") { Description = "Address to listen on.", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "Port (0: any free port).", DefaultValueFactory = _ => 8000 };
        var maxBatch = new Option<int>("--max-batch") { Description = "Most rows decoding together.", DefaultValueFactory = _ => 32 };
        var maxQueue = new Option<int>("--max-queue") { Description = "Most requests waiting; more get 429.", DefaultValueFactory = _ => 256 };
        var kvBudget = new Option<int>("--kv-budget") { Description = "Key/value cache budget of the running batch, in MB (padding included).", DefaultValueFactory = _ => 2048 };
        var apiKey = new Option<string?>("--api-key") { Description = "Require Authorization: Bearer KEY on /v1/*." };
        var name = new Option<string?>("--served-model-name") { Description = "The base's name in requests (default: its folder's name)." };
        var chatTemplate = new Option<string?>("--chat-template") { Description = "Jinja chat template FILE for /v1/chat/completions (default: the model's own)." };
        var upstream = new Option<string?>("--upstream") { Description = "Gateway mode: route each request with the served router and forward it to this OpenAI-compatible URL with model set to the chosen adapter." };
        var command = new Command("serve", "OpenAI-compatible service (completions, chat, streaming) with continuous batching of mixed experts.");
        foreach (var o in new Option[] { model, adapter, strategy, host, port, maxBatch, maxQueue, kvBudget, apiKey, name, chatTemplate, upstream }) command.Options.Add(o);
        command.SetAction(CliErrors.Guard(parse =>
        {
            int p = parse.GetValue(port);
            if (p is < 0 or > 65535) throw new ArgumentException($"--port: must be 0..65535, got {p}");
            int kv = parse.GetValue(kvBudget);
            if (kv < 1) throw new ArgumentException($"--kv-budget: must be at least 1 MB, got {kv}");
            var options = new ServeOptions(parse.GetValue(model)!)
            {
                Adapters = (parse.GetValue(adapter) ?? []).Select(a => ServeOptions.NamedFolder("--adapter", a)).ToList(),
                Strategies = (parse.GetValue(strategy) ?? []).Select(s => ServeOptions.NamedFolder("--strategy", s)).ToList(),
                Host = parse.GetValue(host)!,
                Port = p,
                Engine = new EngineOptions(parse.GetValue(maxBatch), parse.GetValue(maxQueue), (long)kv << 20),
                ApiKey = parse.GetValue(apiKey),
                ServedModelName = parse.GetValue(name),
                ChatTemplateFile = parse.GetValue(chatTemplate),
                Upstream = parse.GetValue(upstream) is { } u ? UpstreamUri(u) : null,
            };
            options.Engine.Validate();
            var server = AmalgamServer.StartAsync(options, line => Console.Error.WriteLine(line)).GetAwaiter().GetResult();
            Console.Error.WriteLine(server.Summary);
            server.WaitForShutdownAsync().GetAwaiter().GetResult();
            Console.Error.WriteLine("draining: finishing running requests");
            server.StopAsync().GetAwaiter().GetResult();
            return 0;
        }));
        return command;
    }

    static Uri UpstreamUri(string value) =>
        Uri.TryCreate(value, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" ? uri
        : throw new ArgumentException($"--upstream: '{value}' is not an http(s) URL");
}
