using Amalgam.Runtime;
using Amalgam.Tests.Cli;
using static TorchSharp.torch;

namespace Amalgam.Tests.Runtime;

public class CpuBudgetTests
{
    [Theory]
    [InlineData("max 100000", null)]
    [InlineData("150000 100000", 1.5)]
    [InlineData("200000 100000\n", 2.0)]
    [InlineData("50000", 0.5)]
    [InlineData("garbage 100000", null)]
    public void Cpu_max_is_quota_over_period(string text, double? cores) => Assert.Equal(cores, CpuBudget.ParseCpuMax(text));

    [Fact]
    public void The_tightest_quota_of_the_cgroup_and_its_ancestors_counts_rounded_up()
    {
        using var dir = new TestData.TempDir();
        var root = Path.Combine(dir.Path, "fs");
        Directory.CreateDirectory(Path.Combine(root, "a", "b"));
        File.WriteAllText(Path.Combine(root, "a", "cpu.max"), "250000 100000\n");
        File.WriteAllText(Path.Combine(root, "a", "b", "cpu.max"), "max 100000\n");
        var self = Path.Combine(dir.Path, "cgroup");
        File.WriteAllText(self, "0::/a/b\n");
        Assert.Equal(3, CpuBudget.QuotaCores(self, root));
        File.WriteAllText(Path.Combine(root, "a", "b", "cpu.max"), "50000 100000\n");
        Assert.Equal(1, CpuBudget.QuotaCores(self, root));
        File.WriteAllText(Path.Combine(root, "a", "cpu.max"), "max 100000\n");
        File.WriteAllText(Path.Combine(root, "a", "b", "cpu.max"), "max 100000\n");
        Assert.Null(CpuBudget.QuotaCores(self, root));
    }

    [Fact]
    public void Cgroup_v1_cfs_quota_is_read_too()
    {
        using var dir = new TestData.TempDir();
        var cpu = Path.Combine(dir.Path, "fs", "cpu", "job");
        Directory.CreateDirectory(cpu);
        File.WriteAllText(Path.Combine(cpu, "cpu.cfs_quota_us"), "300000\n");
        File.WriteAllText(Path.Combine(cpu, "cpu.cfs_period_us"), "100000\n");
        var self = Path.Combine(dir.Path, "cgroup");
        File.WriteAllText(self, "4:memory:/x\n3:cpu,cpuacct:/job\n");
        Assert.Equal(3, CpuBudget.QuotaCores(self, Path.Combine(dir.Path, "fs")));
        File.WriteAllText(Path.Combine(cpu, "cpu.cfs_quota_us"), "-1\n");
        Assert.Null(CpuBudget.QuotaCores(self, Path.Combine(dir.Path, "fs")));
    }

    [Fact]
    public void The_affinity_count_matches_the_kernels_allowed_list()
    {
        // Cpus_allowed_list is "0-1,4,6-7": count the CPUs it names.
        var line = File.ReadLines("/proc/self/status").Single(l => l.StartsWith("Cpus_allowed_list:"));
        int expected = line.Split(':')[1].Trim().Split(',').Sum(r => r.Contains('-') ? int.Parse(r.Split('-')[1]) - int.Parse(r.Split('-')[0]) + 1 : 1);
        Assert.Equal(expected, CpuBudget.AffinityCount());
        Assert.InRange(CpuBudget.Available(), 1, expected);
    }
}

public class TorchThreadsTests
{
    [Fact]
    public void The_test_process_set_its_threads_before_libtorch_loaded()
    {
        var s = TorchThreads.Current;
        Assert.NotNull(s);
        Assert.True(s!.WaitPolicyBeforeLoad);
        Assert.Equal(TorchThreads.FromEnvironment() ?? 1, get_num_threads());
        Assert.Equal(1, get_num_interop_threads());
        Assert.Equal(Environment.GetEnvironmentVariable("OMP_WAIT_POLICY"), s.WaitPolicy);
        Assert.True(TorchThreads.OpenMpLoaded());
    }

    static readonly Dictionary<string, string?> Unset = new() { ["OMP_WAIT_POLICY"] = null, ["OMP_NUM_THREADS"] = null, ["MKL_NUM_THREADS"] = null, ["OMP_DISPLAY_ENV"] = "TRUE" };

    [Fact]
    public void The_cli_sets_the_passive_wait_policy_before_libgomp_reads_it()
    {
        // libgomp prints the values it read at load time with OMP_DISPLAY_ENV: the in-process setenv must show there.
        var r = CliRunner.RunWith(Unset, "--threads", "2", "--verbose", "inspect", Path.Combine(TestData.RepoRoot, "suite", "base", "config.json"));
        Assert.Contains("OMP_WAIT_POLICY = 'PASSIVE'", r.Stderr);
        Assert.Contains("amalgam: 2 threads (--threads), inter-op 1, OMP_WAIT_POLICY=PASSIVE", r.Stderr);
    }

    [Fact]
    public void An_explicit_wait_policy_is_left_alone_and_the_default_count_is_the_available_cores()
    {
        var env = new Dictionary<string, string?>(Unset) { ["OMP_WAIT_POLICY"] = "ACTIVE" };
        var r = CliRunner.RunWith(env, "--verbose", "inspect", Path.Combine(TestData.RepoRoot, "suite", "base", "config.json"));
        Assert.Contains("OMP_WAIT_POLICY = 'ACTIVE'", r.Stderr);
        Assert.Contains($"amalgam: {CpuBudget.Available()} threads (available cores)", r.Stderr);
    }

    [Fact]
    public void A_thread_count_below_one_is_refused_in_one_line()
    {
        var r = CliRunner.Run("--threads", "0", "inspect", Path.Combine(TestData.RepoRoot, "suite", "base", "config.json"));
        Assert.Equal(1, r.ExitCode);
        Assert.StartsWith("amalgam: error: --threads: must be at least 1, got 0", r.Stderr);
        Assert.Single(r.Stderr.Trim().Split('\n'));
    }
}
