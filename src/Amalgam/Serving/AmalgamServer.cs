using System.Net;
using Amalgam.Experts;
using Amalgam.Models;
using Amalgam.Serving.Api;
using Amalgam.Serving.Engine;
using Amalgam.Tokenizers;
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
    private int stopped;

    private AmalgamServer(WebApplication app, ServingEngine engine, CausalLM model, ModelCatalog catalog, Uri address)
    {
        this.app = app;
        this.engine = engine;
        this.model = model;
        Catalog = catalog;
        Address = address;
    }

    /// <summary>The bound address, e.g. http://127.0.0.1:8000 (the real port when 0 was asked).</summary>
    public Uri Address { get; }

    public ModelCatalog Catalog { get; }

    /// <summary>One line: what is served where.</summary>
    public string Summary => $"serving {string.Join(", ", Catalog.List().Select(m => m.Kind == "base" ? $"{m.Id} (base)" : $"{m.Id} ({m.Kind})"))} " +
        $"on {Address} (max batch {engine.Options.MaxBatch}, queue {engine.Options.MaxQueue}, KV budget {engine.Options.KvBudgetBytes >> 20} MB = {engine.BudgetPositions} positions)";

    public static async Task<AmalgamServer> StartAsync(ServeOptions o, Action<string>? progress = null)
    {
        progress?.Invoke($"loading {o.ModelDir}");
        var tokenizer = TokenizerLoader.Load(o.ModelDir);
        var model = CheckpointLoader.Load(o.ModelDir);
        var adapters = new Dictionary<string, LoraAdapter>(StringComparer.Ordinal);
        ServingEngine? engine = null;
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
            if (o.Strategies.Count > 0)
                throw new NotSupportedException($"--strategy: saved strategy folders cannot be served yet (no strategy-folder loader in this build); serve its experts with --adapter and mix them with the 'adapters' field");
            var metrics = new ServingMetrics();
            engine = new ServingEngine(model, adapters, GenerationDefaults.StopTokens(tokenizer, model.Config), GenerationDefaults.PadId(tokenizer, model.Config), o.Engine, metrics);
            adapters.Clear();   // the engine owns them now

            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
            builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = TimeSpan.FromMinutes(2));
            builder.WebHost.ConfigureKestrel(k => k.Listen(ParseHost(o.Host), o.Port));
            var app = builder.Build();
            var context = new ServingContext(catalog, engine, tokenizer, model.Config.MaxPositionEmbeddings, metrics, o.ChatRenderer, o.ApiKey);
            OpenAiEndpoints.Map(app, context);
            app.Lifetime.ApplicationStopping.Register(engine.BeginDrain);
            await app.StartAsync();
            var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            return new AmalgamServer(app, engine, model, catalog, new Uri(bound.Replace("[::]", "localhost")));
        }
        catch
        {
            foreach (var a in adapters.Values) a.Dispose();
            if (engine is not null) await engine.StopAsync();
            model.Dispose();
            throw;
        }
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
        await app.StopAsync();      // waits for in-flight requests, which the engine keeps serving
        await engine.StopAsync();
        await app.DisposeAsync();
        model.Dispose();
    }

    public async ValueTask DisposeAsync() => await StopAsync();
}
