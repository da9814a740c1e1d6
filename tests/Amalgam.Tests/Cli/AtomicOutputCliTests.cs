using Amalgam.Tests.Merging;

namespace Amalgam.Tests.Cli;

/// <summary>
/// The atomic-output promise, with the real CLI killed (SIGKILL, via AMALGAM_FAULT_KILL_AT_RENAME) just before each
/// of its commit steps in turn (every rename, and the removal of the replaced output): after every kill OUT is the complete old output or the complete new one, the next
/// run leaves nothing of the killed one behind, and an output overlapping an input is refused before any work.
/// </summary>
public class AtomicOutputCliTests
{
    static string Recipe(string a, string b, double w) =>
        $"merge_method: linear\nmodels:\n  - model: {a}\n    parameters: {{weight: {w}}}\n  - model: {b}\n    parameters: {{weight: {1 - w}}}\n";

    /// <summary>Every file of a folder but README.md (it carries the time of the run).</summary>
    static Dictionary<string, string> Snapshot(string dir) =>
        Directory.GetFiles(dir).Where(f => Path.GetFileName(f) != "README.md")
            .ToDictionary(f => Path.GetFileName(f)!, f => Convert.ToHexString(File.ReadAllBytes(f)));

    static bool Same(Dictionary<string, string> x, Dictionary<string, string> y) =>
        x.Count == y.Count && x.All(kv => y.TryGetValue(kv.Key, out var v) && v == kv.Value);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_merge_killed_at_any_rename_leaves_the_old_or_the_new_output(bool twoRenameFallback)
    {
        using var dir = new TestData.TempDir();
        string a = MergeFixtures.Perturbed(dir, "a", 1), b = MergeFixtures.Perturbed(dir, "b", 2);
        File.WriteAllText(dir["old.yaml"], Recipe(a, b, 0.25));
        File.WriteAllText(dir["new.yaml"], Recipe(a, b, 0.75));
        string outDir = dir["out"];
        var env = new Dictionary<string, string>();
        if (twoRenameFallback) env["AMALGAM_NO_RENAME_EXCHANGE"] = "1";
        string[] inputs = ["a", "b", "new.yaml", "old.yaml"];

        Assert.Equal(0, CliRunner.RunIn(dir.Path, env, "merge", "old.yaml", "out").ExitCode);
        var old = Snapshot(outDir);
        var seen = new List<Dictionary<string, string>>();
        int kills = 0;
        for (int n = 1; n <= 10; n++)
        {
            var r = CliRunner.RunIn(dir.Path, new Dictionary<string, string>(env) { ["AMALGAM_FAULT_KILL_AT_RENAME"] = n.ToString() }, "merge", "new.yaml", "out");
            if (r.ExitCode == 0) break;
            kills++;
            Assert.Equal(137, r.ExitCode);
            if (Directory.Exists(outDir)) seen.Add(Snapshot(outDir));
            else
            {
                // Only the fallback has an instant without OUT (between its two renames): the old one waits beside it.
                Assert.True(twoRenameFallback, $"kill at rename {n}: no output folder");
                var setAside = Assert.Single(Directory.GetDirectories(dir.Path, ".out.old-*"));
                Assert.True(Same(old, Snapshot(setAside)));
            }
            // The next run (here: the old recipe again) cleans up after the killed one and restores the old state.
            Assert.Equal(0, CliRunner.RunIn(dir.Path, env, "merge", "old.yaml", "out").ExitCode);
            Assert.True(Same(old, Snapshot(outDir)));
            Assert.Equal([.. inputs, "out"], Directory.GetFileSystemEntries(dir.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        }
        // Exchange: the shard's rename, the swap, the removal of the old output; the fallback swaps in two renames.
        Assert.Equal(twoRenameFallback ? 4 : 3, kills);
        var complete = Snapshot(outDir);
        Assert.False(Same(old, complete));
        Assert.All(seen, s => Assert.True(Same(s, old) || Same(s, complete)));
        Assert.Contains(seen, s => Same(s, complete)); // a kill after the swap: the new output is in place
        Assert.Equal([.. inputs, "out"], Directory.GetFileSystemEntries(dir.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void A_merge_into_the_current_folder_or_an_input_is_refused_and_deletes_nothing()
    {
        using var dir = new TestData.TempDir();
        string a = MergeFixtures.Perturbed(dir, "a", 1), b = MergeFixtures.Perturbed(dir, "b", 2);
        File.WriteAllText(dir["recipe.yaml"], Recipe("a", "b", 0.5));
        File.WriteAllText(dir["unrelated.txt"], "keep me");
        var before = Directory.GetFileSystemEntries(dir.Path, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();

        var here = CliRunner.RunIn(dir.Path, null, "merge", "recipe.yaml", ".");
        Assert.Equal(1, here.ExitCode);
        Assert.Equal($"amalgam: error: .: the output folder contains the input {a}; choose an output outside every input", here.Stderr.Trim());
        var intoInput = CliRunner.RunIn(dir.Path, null, "merge", "recipe.yaml", "a");
        Assert.Equal($"amalgam: error: a: the output folder is the input {a}; choose an output outside every input", intoInput.Stderr.Trim());
        var inside = CliRunner.RunIn(dir.Path, null, "merge", "recipe.yaml", "b/merged");
        Assert.Equal($"amalgam: error: b/merged: the output folder lies inside the input {b}; choose an output outside every input", inside.Stderr.Trim());

        Assert.Equal(before, Directory.GetFileSystemEntries(dir.Path, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal));
        Assert.Equal("keep me", File.ReadAllText(dir["unrelated.txt"]));
    }
}
