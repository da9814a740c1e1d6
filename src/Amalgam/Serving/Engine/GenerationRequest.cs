using System.Diagnostics;
using System.Threading.Channels;

namespace Amalgam.Serving.Engine;

/// <summary>
/// Decoding settings of one request: at most <see cref="MaxTokens"/> tokens; <see cref="Temperature"/> 0 is greedy
/// (argmax, as <c>amalgam generate</c>), otherwise nucleus sampling within <see cref="TopP"/> with a generator
/// seeded by <see cref="Seed"/> (same seed, same tokens); <see cref="Logprobs"/> asks for the chosen token's
/// log-probability and that many alternatives; <see cref="IgnoreEos"/> (vLLM's extension) keeps generating past
/// the end-of-sequence token, so that every request does the same work (benchmarks).
/// </summary>
public sealed record SamplingParams(int MaxTokens, double Temperature = 0, double TopP = 1, int? Seed = null, int? Logprobs = null, bool IgnoreEos = false);

/// <summary>One generated token with its log-probability under the model (and the top alternatives when asked).</summary>
public sealed record TokenEvent(long Token, double Logprob, IReadOnlyList<(long Token, double Logprob)>? Top);

/// <summary>Why generation ended: stop (end of sequence), length (max_tokens), cancelled, or error with a message.</summary>
public sealed record FinishEvent(string Reason, string? Error = null, int Status = 500, string? Param = null);

/// <summary>
/// One request as the engine sees it: prompt ids (bos included), what answers, how to decode. The engine writes
/// <see cref="TokenEvent"/>s and one final <see cref="FinishEvent"/> to <see cref="Events"/>; the HTTP handler
/// reads them. Cancelling <see cref="Cancellation"/> (client gone, stop string seen) frees the request's rows at
/// the next step.
/// </summary>
public sealed class GenerationRequest
{
    public GenerationRequest(IReadOnlyList<long> prompt, IServedModel model, SamplingParams sampling, CancellationToken cancellation)
    {
        if (prompt.Count == 0) throw new ArgumentException("a prompt needs at least one token");
        ArgumentOutOfRangeException.ThrowIfLessThan(sampling.MaxTokens, 1);
        Prompt = prompt;
        Model = model;
        Sampling = sampling;
        Cancellation = cancellation;
        Random = sampling.Seed is int seed ? new Random(seed) : new Random(System.Random.Shared.Next());
    }

    public IReadOnlyList<long> Prompt { get; }
    public IServedModel Model { get; }
    public SamplingParams Sampling { get; }
    public CancellationToken Cancellation { get; }

    public Channel<object> Events { get; } = Channel.CreateUnbounded<object>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });

    /// <summary>Started when the request was queued (time to first token is measured from here).</summary>
    public Stopwatch Clock { get; } = Stopwatch.StartNew();

    // Engine-thread state.
    internal Random Random { get; }
    internal ExpertPlan? Plan { get; set; }
    internal int Generated { get; set; }
    internal long Pending { get; set; }
    internal bool Finished { get; set; }
    internal double LastTokenSeconds { get; set; }

    /// <summary>Positions this request can hold in a cache row: prompt plus every token it may generate.</summary>
    public int MaxLength => Prompt.Count + Sampling.MaxTokens;

    internal void Emit(TokenEvent e) => Events.Writer.TryWrite(e);

    internal void Finish(string reason, string? error = null, int status = 500, string? param = null)
    {
        if (Finished) return;
        Finished = true;
        Events.Writer.TryWrite(new FinishEvent(reason, error, status, param));
        Events.Writer.TryComplete();
    }
}
