using System.Text.Json;
using System.Text.Json.Serialization;
using Amalgam.Tensors;

namespace Amalgam.Models;

/// <summary>Writes a model as a Hugging Face checkpoint folder (config.json + model.safetensors), atomically.</summary>
public static class CheckpointWriter
{
    static readonly JsonSerializerOptions Json = new() { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    /// <param name="model">the model; its config is written with torch_dtype set from its dtype</param>
    /// <param name="dir">the checkpoint folder (replaced only when complete)</param>
    /// <param name="extraFiles">writes further files (a tokenizer, a README) into the staging folder</param>
    public static void Save(CausalLM model, string dir, Action<string>? extraFiles = null)
    {
        var config = model.Config;
        config.TorchDtype = model.Dtype switch
        {
            TorchSharp.torch.ScalarType.BFloat16 => "bfloat16",
            TorchSharp.torch.ScalarType.Float16 => "float16",
            _ => "float32",
        };
        var tensors = model.named_parameters().ToDictionary(p => p.name, p => (TorchSharp.torch.Tensor)p.parameter);
        AtomicDirectory.Write(dir, staging =>
        {
            File.WriteAllText(Path.Combine(staging, "config.json"), JsonSerializer.Serialize(config, Json));
            SafeTensorsWriter.Save(Path.Combine(staging, "model.safetensors"), tensors, new Dictionary<string, string> { ["format"] = "pt" });
            extraFiles?.Invoke(staging);
        });
    }
}
