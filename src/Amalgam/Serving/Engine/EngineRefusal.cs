namespace Amalgam.Serving.Engine;

/// <summary>Why the engine did not take a request: its queue is full (429) or it is shutting down (503).</summary>
public enum EngineRefusal
{
    None,
    QueueFull,
    ShuttingDown,
}
