using System.Runtime;
using TorchSharp;

namespace Amalgam.Models;

/// <summary>
/// An optimizer step with no garbage collection while it runs. TorchSharp's optimizers (AdamW, Adam) build temporary
/// Scalars inside <c>step()</c> and pass their native handles on without keeping them reachable (the bug
/// <see cref="Scalars"/> works around for forwards); under GC pressure a finalizer frees one mid-call, seen as
/// "toFloat" asserts in <c>add_</c> from <c>AdamW.step</c> during a full test run. A no-GC region keeps every
/// finalizer from running until the step returns; a step allocates only small wrappers, far below the budget.
/// </summary>
public static class GcSafeStep
{
    const long Budget = 16L << 20;

    public static void Step(torch.optim.Optimizer optimizer)
    {
        bool region = false;
        try { region = GCSettings.LatencyMode != GCLatencyMode.NoGCRegion && GC.TryStartNoGCRegion(Budget); }
        catch (InvalidOperationException) { }
        catch (ArgumentOutOfRangeException) { }
        try { optimizer.step(); }
        finally
        {
            // The region ends by itself if the step outgrew the budget; end it only if it is still in force.
            if (region && GCSettings.LatencyMode == GCLatencyMode.NoGCRegion) GC.EndNoGCRegion();
        }
    }
}
