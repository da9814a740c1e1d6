using Prometheus;

namespace Amalgam.Serving;

/// <summary>
/// The server's Prometheus metrics (prometheus-net), in a registry of its own so that several servers in one
/// process (tests) do not share counts. Names follow vLLM's where there is one.
/// </summary>
public sealed class ServingMetrics
{
    public ServingMetrics()
    {
        Registry = Metrics.NewCustomRegistry();
        var f = Metrics.WithCustomRegistry(Registry);
        Requests = f.CreateCounter("amalgam_requests_total", "HTTP requests answered, by endpoint and status code.",
            new CounterConfiguration { LabelNames = ["endpoint", "status"] });
        PromptTokens = f.CreateCounter("amalgam_prompt_tokens_total", "Prompt tokens prefilled.");
        GeneratedTokens = f.CreateCounter("amalgam_generation_tokens_total", "Tokens generated.");
        QueueDepth = f.CreateGauge("amalgam_queue_depth", "Requests waiting to join the running batch.");
        RunningRows = f.CreateGauge("amalgam_running_batch_rows", "Rows in the running decode batch (an output ensemble takes one per member).");
        RunningRequests = f.CreateGauge("amalgam_running_requests", "Requests in the running decode batch.");
        TimeToFirstToken = f.CreateHistogram("amalgam_time_to_first_token_seconds", "From queueing to the first generated token.",
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.001, 2, 16) });
        TimePerOutputToken = f.CreateHistogram("amalgam_time_per_output_token_seconds", "Between consecutive generated tokens of a request.",
            new HistogramConfiguration { Buckets = Histogram.ExponentialBuckets(0.0005, 2, 14) });
    }

    public CollectorRegistry Registry { get; }
    public Counter Requests { get; }
    public Counter PromptTokens { get; }
    public Counter GeneratedTokens { get; }
    public Gauge QueueDepth { get; }
    public Gauge RunningRows { get; }
    public Gauge RunningRequests { get; }
    public Histogram TimeToFirstToken { get; }
    public Histogram TimePerOutputToken { get; }
}
