namespace Amalgam.Tensors;

/// <summary>The file names Hugging Face uses for safetensors checkpoints.</summary>
public static class CheckpointFileNames
{
    public const string Model = "model";
    public const string Adapter = "adapter_model";
    public const string Extension = ".safetensors";

    /// <summary><c>model.safetensors</c>, or <c>adapter_model.safetensors</c> for a LoRA adapter.</summary>
    public static string Single(string baseName = Model) => baseName + Extension;

    /// <summary><c>model.safetensors.index.json</c>.</summary>
    public static string Index(string baseName = Model) => baseName + Extension + ".index.json";

    /// <summary><c>model-00001-of-00003.safetensors</c>: 1-based, five digits, as Hugging Face writes them.</summary>
    public static string Shard(int number, int count, string baseName = Model) =>
        $"{baseName}-{number:D5}-of-{count:D5}{Extension}";
}
