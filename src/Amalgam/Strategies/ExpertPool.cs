using Amalgam.Experts;
using Amalgam.Mixing;
using Amalgam.Models;
using Amalgam.Tokenizers;

namespace Amalgam.Strategies;

/// <summary>
/// A base model and named LoRA experts installed on it as one <see cref="ExpertLibrary"/>: what every strategy
/// answers with (FusionBench's model pool). Without a mixing policy the model is the base alone, so one loaded
/// model serves the base, every mixture and every ensemble. Expert k is column k of every weight vector.
/// </summary>
public sealed class ExpertPool : IDisposable
{
    private ExpertPool(string basePath, IReadOnlyList<string> expertPaths, ITextTokenizer tokenizer, CausalLM model, List<LoraAdapter> experts)
    {
        BasePath = basePath;
        ExpertPaths = expertPaths;
        Tokenizer = tokenizer;
        Model = model;
        Experts = experts;
        Library = experts.Count == 0 ? null : new ExpertLibrary(model, experts);
        PadId = GenerationDefaults.PadId(tokenizer, model.Config);
        Names = experts.Select(e => e.Name).ToList();
    }

    public string BasePath { get; }
    public IReadOnlyList<string> ExpertPaths { get; }
    public ITextTokenizer Tokenizer { get; }
    public CausalLM Model { get; }
    public IReadOnlyList<LoraAdapter> Experts { get; }
    /// <summary>The installed library; null for a pool without experts.</summary>
    public ExpertLibrary? Library { get; }
    public long PadId { get; }
    public int Count => Experts.Count;
    /// <summary>The experts' names, in library order.</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>Loads the base checkpoint (and its tokenizer) and each named expert onto it.</summary>
    /// <param name="basePath">a Hugging Face checkpoint folder</param>
    /// <param name="experts">expert names and PEFT adapter folders, in library order</param>
    /// <param name="device">where the model runs (the CPU build runs on the CPU only)</param>
    public static ExpertPool Load(string basePath, IReadOnlyList<(string Name, string Path)> experts, TorchSharp.torch.Device? device = null)
    {
        var tokenizer = TokenizerLoader.Load(basePath);
        var model = CheckpointLoader.Load(basePath, device: device);
        var loaded = new List<LoraAdapter>();
        try
        {
            foreach (var (name, path) in experts) loaded.Add(LoraAdapter.Load(path, model, name));
            return new ExpertPool(basePath, experts.Select(e => e.Path).ToList(), tokenizer, model, loaded);
        }
        catch
        {
            foreach (var e in loaded) e.Dispose();
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A pool without experts whose model is a checkpoint made from the base (a folded merge saved with the base's
    /// tokenizer files): loads that model only, so the base itself is never read into memory; <see cref="BasePath"/>
    /// still names the base it was made from.
    /// </summary>
    public static ExpertPool ModelOnly(string basePath, string modelFolder, TorchSharp.torch.Device? device = null) =>
        new(basePath, [], TokenizerLoader.Load(modelFolder), CheckpointLoader.Load(modelFolder, device: device), []);

    public void Dispose()
    {
        Library?.Dispose();
        foreach (var e in Experts) e.Dispose();
        Model.Dispose();
    }
}
