using Amalgam.Tests.Tensors;
using static TorchSharp.torch;

namespace Amalgam.Tests.Cli;

/// <summary>The one-line error contract where issue 12 found it broken: option parsing, non-finite logits, names with control characters.</summary>
public class ErrorContractCliTests
{
    [Fact]
    public void Option_errors_carry_the_prefix_and_blame_the_option()
    {
        var limit = CliRunner.Run("eval", "--suite", "suite", "--limit", "-3");
        Assert.Equal(1, limit.ExitCode);
        Assert.Equal("amalgam: error: --limit: must be at least 1, got -3", limit.Stderr.Trim());
        var unknown = CliRunner.Run("inspect", "a", "b");
        Assert.Equal(1, unknown.ExitCode);
        Assert.StartsWith("amalgam: error: Unrecognized command or argument 'b'", unknown.Stderr);
        Assert.Single(unknown.Stderr.Trim().Split('\n'));
        var help = CliRunner.Run("inspect", "--help"); // help still wins
        Assert.Equal(0, help.ExitCode);
    }

    [Fact]
    public void Non_finite_logits_name_the_first_position_instead_of_printing_half_a_json_object()
    {
        using var t = new TempFolder();
        string model = t.File("nan-model");
        Directory.CreateDirectory(model);
        foreach (var f in Directory.GetFiles(TestData.Golden("llama_gqa"))) File.Copy(f, Path.Combine(model, Path.GetFileName(f)));
        TestData.RewriteSafetensors(Path.Combine(model, "model.safetensors"), ts =>
        {
            ts["model.norm.weight"] = full_like(ts["model.norm.weight"], double.NaN);
            return ts;
        });
        var r = CliRunner.Run("logits", "--model", model, "--ids", "1,2,3");
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("", r.Stdout);
        Assert.Equal("amalgam: error: logits: position 0, token 0 is NaN; the model (or an adapter) produced non-finite values and nothing was printed", r.Stderr.Trim());
    }

    [Fact]
    public void Inspect_escapes_control_characters_in_tensor_names_and_metadata()
    {
        using var t = new TempFolder();
        string path = t.WriteRaw("evil.safetensors", "{\"__metadata__\":{\"k\\u001b]0;title\\u0007\":\"v\\r\"},\"a\\u001b[2Jb\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", new byte[4]);
        var r = CliRunner.Run("inspect", path);
        Assert.Equal(0, r.ExitCode);
        Assert.DoesNotContain('\u001b', r.Stdout);
        Assert.Contains("a\\u001B[2Jb", r.Stdout);
        Assert.Contains("metadata: k\\u001B]0;title\\u0007=v\\u000D", r.Stdout);
    }

    [Fact]
    public void Eval_escapes_control_characters_in_a_task_family()
    {
        using var t = new TempFolder();
        File.WriteAllText(t.File("suite.yaml"), $"name: s\nbase: {System.Text.Json.JsonSerializer.Serialize(Path.Combine(TestData.RepoRoot, "suite", "base"))}\ntasks:\n- {{name: t, family: \"a\\e[31mred\\x07\", metric: exact_match, held_out: true}}\n");
        Directory.CreateDirectory(t.File("data/t"));
        File.WriteAllText(t.File("data/t/test.jsonl"), "{\"input\": \"a\", \"target\": \"a\"}\n");
        var r = CliRunner.Run("eval", "--suite", t.Path);
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.DoesNotContain('\u001b', r.Stdout);
        Assert.Contains("a\\u001B[31mred\\u0007", r.Stdout);
    }
}
