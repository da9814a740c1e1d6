using System.Text.Json.Nodes;
using Amalgam.Study;

namespace Amalgam.Tests.Study;

public class StudyResultsFileTests
{
    [Fact]
    public void RoundTripsExactlyWithSnakeCaseNames()
    {
        using var dir = new TestData.TempDir();
        var results = StudyFixture.Results();
        string file = StudyResultsFile.Save(results, dir.Path);
        Assert.Equal(dir["results.json"], file);
        string json = File.ReadAllText(file);
        foreach (var field in new[] { "\"schema_version\"", "\"expert_scores\"", "\"base_model\"", "\"flops_per_example\"", "\"total_seconds\"",
                     "\"created_at\"", "\"held_out\"", "\"per_task\"", "\"held_in_normalized\"", "\"relative_flops\"", "\"tokens_per_second\"",
                     "\"stored_parameters\"", "\"fit_seconds\"", "\"eval_seconds\"", "\"details\"", "\"deployable\"", "\"variant\"" })
            Assert.Contains(field, json);

        var back = StudyResultsFile.Load(dir.Path);
        Assert.Equal(json, StudyResultsFile.ToJson(back) + "\n");
        Assert.Equal(results.Strategies.Select(s => s.HeldInNormalized), back.Strategies.Select(s => s.HeldInNormalized));
        Assert.Equal(results.CreatedAt, back.CreatedAt);
        Assert.Equal("probabilities", back.Strategies[3].Details!["mode"]!.GetValue<string>());
        Assert.Equal(0.3, back.Strategies[3].Details!["weights"]![1]!.GetValue<double>());
        Assert.Null(back.Strategies[1].HeldOut);
        Assert.False(back.Strategies[1].Deployable);
        Assert.Empty(Directory.GetFiles(dir.Path, ".*"));
    }

    static string Mutated(Action<JsonObject> change)
    {
        var node = JsonNode.Parse(StudyResultsFile.ToJson(StudyFixture.Results()))!.AsObject();
        change(node);
        return node.ToJsonString();
    }

    static JsonObject Strategy(JsonObject root, int i) => root["strategies"]![i]!.AsObject();

    public static TheoryData<string, string> BadFiles() => new()
    {
        { Mutated(r => Strategy(r, 0)["family"] = "blend"), "strategies[0] 'base'.family: 'blend' is not one of" },
        { Mutated(r => Strategy(r, 2)["per_task"]!["a"] = 1.5), "strategies[2] 'ensemble-uniform'.per_task.a: score must be in [0, 1]" },
        { Mutated(r => Strategy(r, 2)["per_task"]!["q"] = 0.5), "strategies[2] 'ensemble-uniform'.per_task.q: not a task" },
        { Mutated(r => Strategy(r, 2)["held_in_normalized"] = 0.7), "strategies[2] 'ensemble-uniform'.held_in_normalized: 0.7 disagrees with per_task" },
        { Mutated(r => Strategy(r, 2)["held_out"] = null), "strategies[2] 'ensemble-uniform'.held_out: null disagrees" },
        { Mutated(r => Strategy(r, 2)["per_task"]!.AsObject().Remove("b")), "strategies[2] 'ensemble-uniform': per_task: held-in task 'b' has no score" },
        { Mutated(r => Strategy(r, 2)["relative_flops"] = 0), "strategies[2] 'ensemble-uniform'.relative_flops: must be positive" },
        { Mutated(r => Strategy(r, 2)["fit_seconds"] = -1), "strategies[2] 'ensemble-uniform'.fit_seconds: must be a finite number ≥ 0" },
        { Mutated(r => Strategy(r, 2)["name"] = "base"), "strategies[2] 'base'.name: appears twice" },
        { Mutated(r => Strategy(r, 2).Remove("tokens_per_second")), "tokens_per_second" },
        { Mutated(r => Strategy(r, 2)["colour"] = "red"), "colour" },
        { Mutated(r => r["expert_scores"]!.AsObject().Remove("c")), "expert_scores.c: missing" },
        { Mutated(r => r["expert_scores"]!["x"] = 0.5), "expert_scores.x: is a held-out task" },
        { Mutated(r => r["schema_version"] = 2), "schema_version: 2 is not supported" },
        { Mutated(r => r["machine"]!["cores"] = 0), "machine.cores: must be positive" },
        { Mutated(r => r["tasks"]![1]!["name"] = "a"), "tasks[1].name: 'a' appears twice" },
        { Mutated(r => r["strategies"] = new JsonArray()), "strategies: no strategies" },
        { Mutated(r => r["seed"] = "seven"), "invalid JSON or field type at 'seed'" },
    };

    [Theory]
    [MemberData(nameof(BadFiles))]
    public void BadFilesAreRefusedInOneLineNamingTheField(string json, string expected)
    {
        var e = Assert.Throws<InvalidDataException>(() => StudyResultsFile.Parse(json, "out/results.json"));
        Assert.StartsWith("out/results.json: ", e.Message);
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain("\n", e.Message);
    }

    [Fact]
    public void SaveRefusesAnInconsistentStudyAndLeavesNoFile()
    {
        using var dir = new TestData.TempDir();
        var results = StudyFixture.Results();
        results.Strategies[0] = results.Strategies[0] with { HeldInNormalized = 0.9 };
        Assert.Throws<InvalidDataException>(() => StudyResultsFile.Save(results, dir["results.json"]));
        Assert.Empty(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void MissingFileIsNamed()
    {
        using var dir = new TestData.TempDir();
        Assert.Contains("results.json: not found", Assert.Throws<FileNotFoundException>(() => StudyResultsFile.Load(dir.Path)).Message);
    }
}
