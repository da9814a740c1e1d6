namespace Amalgam.Serving.Engine;

/// <summary>
/// Limits of the engine: at most <see cref="MaxBatch"/> rows decode together (an output ensemble of c members takes
/// c rows); at most <see cref="MaxQueue"/> requests wait (more get 429); the running batch's key/value cache,
/// padding included, stays within <see cref="KvBudgetBytes"/>.
/// </summary>
public sealed record EngineOptions(int MaxBatch = 32, int MaxQueue = 256, long KvBudgetBytes = 2048L << 20)
{
    public void Validate()
    {
        if (MaxBatch < 1) throw new ArgumentException($"--max-batch: must be at least 1, got {MaxBatch}");
        if (MaxQueue < 1) throw new ArgumentException($"--max-queue: must be at least 1, got {MaxQueue}");
        if (KvBudgetBytes < 1) throw new ArgumentException($"--kv-budget: must be positive, got {KvBudgetBytes} bytes");
    }
}
