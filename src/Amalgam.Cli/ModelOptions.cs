using System.CommandLine;
using Amalgam.Experts;
using Amalgam.Models;

namespace Amalgam.Cli;

/// <summary>The --model / --adapter pair shared by the verbs that run a model.</summary>
public sealed class ModelOptions
{
    public readonly Option<string> Model = new("--model") { Description = "Hugging Face checkpoint folder (config.json + safetensors)." };
    public readonly Option<string[]> Adapter = new("--adapter") { Description = "PEFT LoRA adapter folder; repeat to stack several.", AllowMultipleArgumentsPerToken = false };

    public void AddTo(Command command)
    {
        command.Options.Add(Model);
        command.Options.Add(Adapter);
    }

    /// <summary>The --model folder (required unless the verb offers another source, such as --strategy).</summary>
    public string ModelDir(ParseResult parse) => parse.GetValue(Model) ?? throw new ArgumentException("--model: required");

    /// <summary>Loads the base and attaches the adapters (unfolded: W·x + s·B·(A·x)).</summary>
    public (CausalLM Model, List<LoraAdapter> Adapters) Load(ParseResult parse)
    {
        var model = CheckpointLoader.Load(ModelDir(parse));
        var adapters = new List<LoraAdapter>();
        foreach (var dir in parse.GetValue(Adapter) ?? [])
        {
            var adapter = LoraAdapter.Load(dir, model);
            adapter.AttachTo(model);
            adapters.Add(adapter);
        }
        return (model, adapters);
    }
}
