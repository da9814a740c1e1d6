using System.Runtime.CompilerServices;
using Amalgam.Runtime;

namespace Amalgam.Tests;

/// <summary>
/// Threads on purpose for the test process, before any test touches libtorch: xunit already runs test classes in
/// parallel on every core, so each libtorch call gets one intra-op thread (or OMP_NUM_THREADS when set), and
/// idle OpenMP workers sleep instead of spinning (OMP_WAIT_POLICY=PASSIVE).
/// </summary>
static class TestThreads
{
    [ModuleInitializer]
    internal static void Configure() => TorchThreads.Configure(TorchThreads.FromEnvironment() ?? 1);
}
