using System.Net;
using Amalgam.Experts;
using Amalgam.Models;
using Amalgam.Serving.Api;
using Amalgam.Serving.Engine;
using Amalgam.Tokenizers;
using Amalgam.Tokenizers.ChatTemplates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Amalgam.Serving;

/// <summary>
/// <c>amalgam serve</c> as a library call: loads the base, its adapters and strategies, starts the engine thread
/// and Kestrel. Stopping drains: new requests get 503, queued and running ones complete, then the engine ends.
/// </summary>
public sealed class AmalgamServer : IAsyncDisposable
{
    private readonly WebApplication app;
    private readonly ServingEngine engine;
    private readonly CausalLM model;
    private readonly IReadOnlyList<ServingEngine> strategyEngines;
    private readonly IReadOnlyList<IDisposable> strategyParts;
    private int stopped;

    private AmalgamServer(WebApplication app, ServingEngine engine, CausalLM model, ModelCatalog catalog, Uri address,
        IReadOnlyList<ServingEngine> strategyEngines, IReadOnlyList<IDisposable> strategyParts)
    {
        this.app = app;
        this.engine = engine;
        this.model = model;
        this.strategyEngines = strategyEngines;
        this.strategyParts = strategyParts;
        Catalog = catalog;
        Address = address;
    }

    /// <summary>The bound address, e.g. http://127.0.0.1:8000 (the real port when 0 was asked).</summary>
    public Uri Address { get; }

    public ModelCatalog Catalog { get; }

    /// <summary>Gateway mode's upstream (null: every request is answered here).</summary>
    public UpstreamGateway? Gateway { get; private init; }

    /// <summary>One line: what is served where.</summary>
    public string Summary => $"serving {string.Join(", ", Catalog.List().Select(m => m.Kind == "base" ? $"{m.Id} (base)" : $"{m.Id} ({m.Kind})"))} " +
        $"on {Address}{(Gateway is null ? "" : $", forwarding to {Gateway.Upstream}")} (max batch {engine.Options.MaxBatch}, queue {engine.Options.MaxQueue}, KV budget {engine.Options.KvBudgetBytes >> 20} MB = {engine.BudgetPositions} positions)";

    public static async Task<AmalgamServer> StartAsync(ServeOptions o, Action<string>? progress = null)
    {
        progress?.Invoke($"loading {o.ModelDir}");
        var tokenizer = TokenizerLoader.Load(o.ModelDir);
        var chat = o.ChatRenderer ?? ChatRendererFor(o);
        var model = CheckpointLoader.Load(o.ModelDir);
        var adapters = new Dictionary<string, LoraAdapter>(StringComparer.Ordinal);
        var parts = new List<IDisposable>();           // loaded strategies and the models of their own engines
        var engines = new List<ServingEngine>();        // the strategies' own engines
        ServingEngine? engine = null;
        UpstreamGateway? gateway = null;
        try
        {
            string baseId = o.ServedModelName ?? Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(o.ModelDir)));
            var catalog = new ModelCatalog(baseId, o.ModelDir);
            foreach (var (name, dir) in o.Adapters)
            {
                progress?.Invoke($"loading adapter {name} from {dir}");
                if (adapters.ContainsKey(name)) throw new ArgumentException($"--adapter: the name '{name}' is given twice");
                adapters[name] = LoraAdapter.Load(dir, model);
                catalog.AddAdapter(name, dir);
            }
            var metrics = new ServingMetrics();
            var stopTokens = GenerationDefaults.StopTokens(tokenizer, model.Config);
            long padId = GenerationDefaults.PadId(tokenizer, model.Config);
            var strategies = new List<(string Name, string Dir, Func<ServingEngine, IServedModel> Make)>();
            foreach (var (name, dir) in o.Strategies)
            {
                progress?.Invoke($"loading strategy {name} from {dir}");
                if (catalog.List().Any(m => m.Id == name) || strategies.Any(s => s.Name == name)) throw new ArgumentException($"--strategy: the name '{name}' is already served");
                var (make, own) = StrategyLoader.Load(name, dir, o.ModelDir, model, adapters, parts, stopTokens, padId, o.Engine, metrics);
                if (own is not null) engines.Add(own);
                strategies.Add((name, dir, make));
            }
            engine = new ServingEngine(model, adapters, stopTokens, padId, o.Engine, metrics);
            adapters.Clear();   // the engine owns them now
            foreach (var (name, dir, make) in strategies) catalog.AddStrategy(make(engine), dir);

            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
            builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = TimeSpan.FromMinutes(2));
            builder.WebHost.ConfigureKestrel(k => k.Listen(ParseHost(o.Host), o.Port));
            var app = builder.Build();
            gateway = o.Upstream is null ? null : new UpstreamGateway(o.Upstream);
            var context = new ServingContext(catalog, engine, tokenizer, model.Config.MaxPositionEmbeddings, metrics, chat, o.ApiKey, gateway);
            OpenAiEndpoints.Map(app, context);
            app.Lifetime.ApplicationStopping.Register(engine.BeginDrain);
            foreach (var e in engines) app.Lifetime.ApplicationStopping.Register(e.BeginDrain);
            await app.StartAsync();
            var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            if (gateway is not null) parts.Add(gateway);
            return new AmalgamServer(app, engine, model, catalog, new Uri(bound.Replace("[::]", "localhost")), engines, parts) { Gateway = gateway };
        }
        catch
        {
            foreach (var a in adapters.Values) a.Dispose();
            if (engine is not null) await engine.StopAsync();
            foreach (var e in engines) await e.StopAsync();
            foreach (var p in parts) p.Dispose();
            gateway?.Dispose();
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The chat template: <c>--chat-template FILE</c>, else the model folder's (chat_template.jinja or
    /// tokenizer_config.json's); none: chat requests get a 400 naming <c>messages</c>.
    /// </summary>
    static Func<IReadOnlyList<ChatMessage>, string>? ChatRendererFor(ServeOptions o)
    {
        ChatTemplate template;
        if (o.ChatTemplateFile is { } file)
            template = ChatTemplate.FromFile(file, o.ModelDir);
        else
            try { template = ChatTemplate.Load(o.ModelDir); }
            catch (FileNotFoundException) { return null; }   // the folder has no template
        return messages => template.Render(messages.Select(m => (m.Role, m.Content)), addGenerationPrompt: true);
    }

    static IPAddress ParseHost(string host) =>
        host == "localhost" ? IPAddress.Loopback
        : IPAddress.TryParse(host, out var ip) ? ip
        : throw new ArgumentException($"--host: '{host}' is not an IP address (use 127.0.0.1, ::1, 0.0.0.0 or localhost)");

    /// <summary>Completes when the host is asked to stop (Ctrl+C, SIGTERM).</summary>
    public Task WaitForShutdownAsync() => app.WaitForShutdownAsync();

    /// <summary>Refuses new requests, lets running ones finish, then stops Kestrel and the engine.</summary>
    public async Task StopAsync()
    {
        if (Interlocked.Exchange(ref stopped, 1) == 1) return;
        engine.BeginDrain();
        foreach (var e in strategyEngines) e.BeginDrain();
        await app.StopAsync();      // waits for in-flight requests, which the engines keep serving
        await engine.StopAsync();
        foreach (var e in strategyEngines) await e.StopAsync();
        await app.DisposeAsync();
        foreach (var p in strategyParts) p.Dispose();
        model.Dispose();
    }

    public async ValueTask DisposeAsync() => await StopAsync();
}
