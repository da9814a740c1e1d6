using System.Text.Json;

namespace Amalgam.Tests.Cli;

public class CliTests
{
    static string G(string name) => TestData.Golden(name);

    [Theory]
    [InlineData("llama_gqa")]
    [InlineData("llama_gqa+lora_all")]
    [InlineData("qwen2_tied+lora_all")]
    public void Logits_prints_the_last_position_as_json_matching_the_reference(string name)
    {
        var c = TestData.Case(name);
        var args = new List<string> { "logits", "--model", G(c.Model), "--ids", string.Join(",", c.Sequences[0]) };
        if (c.Adapter is not null) args.AddRange(["--adapter", G(c.Adapter)]);
        var r = CliRunner.Run([.. args]);
        Assert.True(r.ExitCode == 0, r.Stderr);
        var logits = JsonDocument.Parse(r.Stdout).RootElement.GetProperty("logits").EnumerateArray().Select(e => e.GetSingle()).ToArray();
        var expected = c.Logits[0][^1];
        Assert.Equal(expected.Length, logits.Length);
        for (int v = 0; v < logits.Length; v++) Assert.True(Math.Abs(logits[v] - expected[v]) <= 1e-4, $"token {v}: {logits[v]} vs {expected[v]}");
    }

    [Fact]
    public void Generate_continues_a_prompt_greedily()
    {
        var r = CliRunner.Run("generate", "--model", G("llama_gqa"), "--adapter", G("llama_gqa.lora_qv"), "--prompt", "the cat", "--max-new-tokens", "5", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var json = JsonDocument.Parse(r.Stdout).RootElement;
        Assert.Equal(1, json.GetProperty("prompt_ids")[0].GetInt32()); // bos first
        Assert.InRange(json.GetProperty("ids").GetArrayLength(), 0, 5);
    }

    [Fact]
    public void Inspect_lists_tensors_of_a_checkpoint_and_an_adapter()
    {
        var r = CliRunner.Run("inspect", G("llama_gqa_sharded"));
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Contains("LlamaForCausalLM", r.Stdout);
        Assert.Contains("model.layers.1.mlp.down_proj.weight", r.Stdout);
        var a = CliRunner.Run("inspect", G("llama_gqa.lora_all"));
        Assert.True(a.ExitCode == 0, a.Stderr);
        Assert.Contains("model.layers.0.mlp.down_proj", a.Stdout);
    }

    [Theory]
    [InlineData("logits --model tests/Golden/data/nowhere --ids 1,2", "nowhere")]
    [InlineData("logits --model tests/Golden/data/llama_gqa --ids 1,x", "--ids")]
    [InlineData("logits --model tests/Golden/data/llama_gqa --ids 1,99", "--ids")]
    [InlineData("logits --model tests/Golden/data/llama_gqa --adapter tests/Golden/data/qwen2_tied.lora_all --ids 1,2", "adapter_model.safetensors")]
    [InlineData("inspect tests/Golden/data/goldens.json", "goldens.json")]
    public void Errors_are_one_line_on_stderr_with_a_non_zero_exit(string commandLine, string named)
    {
        var r = CliRunner.Run(commandLine.Split(' '));
        Assert.NotEqual(0, r.ExitCode);
        Assert.Equal("", r.Stdout);
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("amalgam: error: ", lines[0]);
        Assert.Contains(named, lines[0]);
    }

    [Fact]
    public void Verbose_adds_the_stack_trace()
    {
        var r = CliRunner.Run("logits", "--model", "tests/Golden/data/nowhere", "--ids", "1", "--verbose");
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains("   at ", r.Stderr);
    }
}
