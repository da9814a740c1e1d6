using System.Text.Json;

namespace Amalgam.Training;

/// <summary>The saved loss curve: a JSON list of {step, loss, learning_rate, grad_norm}.</summary>
public static class TrainingLogFile
{
    public const string Name = "training_log.json";

    public static void Write(string path, IReadOnlyList<TrainingStep> log) =>
        File.WriteAllText(path, JsonSerializer.Serialize(log.Select(s => new { step = s.Step, loss = s.Loss, learning_rate = s.LearningRate, grad_norm = s.GradNorm })));
}
