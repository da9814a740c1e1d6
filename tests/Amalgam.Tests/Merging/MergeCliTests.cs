using Amalgam.Tests.Cli;

namespace Amalgam.Tests.Merging;

/// <summary>The merge verb's error contract (the built-in method catalogue is filled in elsewhere).</summary>
public class MergeCliTests
{
    [Fact]
    public void A_bad_recipe_is_one_line_on_stderr_with_exit_code_1()
    {
        using var dir = new TestData.TempDir();
        File.WriteAllText(dir["recipe.yaml"], "merge_method: no_such_method\nmodels: [a]\n");
        var r = CliRunner.Run("merge", dir["recipe.yaml"], dir["out"]);
        Assert.Equal(1, r.ExitCode);
        Assert.StartsWith("amalgam: error: recipe.yaml: merge_method: unknown method 'no_such_method'", r.Stderr);
        Assert.Single(r.Stderr.Trim().Split('\n'));
        Assert.False(Directory.Exists(dir["out"]));
    }

    [Fact]
    public void The_flags_form_refuses_recipe_only_misuse_in_one_line()
    {
        using var dir = new TestData.TempDir();
        File.WriteAllText(dir["recipe.yaml"], "merge_method: linear\nmodels: [a]\n");
        var r = CliRunner.Run("merge", dir["recipe.yaml"], dir["out"], "--model", "x");
        Assert.Equal(1, r.ExitCode);
        Assert.StartsWith("amalgam: error: --model: only with --method", r.Stderr);
        var f = CliRunner.Run("merge", "--method", "no_such_method", "--model", "x", dir["out"]);
        Assert.Equal(1, f.ExitCode);
        Assert.StartsWith("amalgam: error: command line: merge_method: unknown method", f.Stderr);
    }
}
