using TorchSharp;
using Amalgam.Tensors;
using static TorchSharp.torch;

namespace Amalgam.Models;

/// <summary>
/// Builds a <see cref="CausalLM"/> from a Hugging Face checkpoint folder: config.json plus model.safetensors or a
/// sharded index. Checkpoint keys map one to one onto module names; missing or unexpected keys are an error
/// listing them. Tensors are read one at a time from the memory-mapped files.
/// </summary>
public static class CheckpointLoader
{
    /// <summary>Keys that transformers itself ignores on load (rotary buffers saved by old conversions).</summary>
    static bool Ignorable(string key) => key.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal);

    /// <param name="dir">the checkpoint folder</param>
    /// <param name="dtype">compute dtype; by default the stored dtype of the embeddings (float16 widened to float32)</param>
    /// <param name="device">where the model's weights live (default: the CPU; the CPU build of libtorch has no other)</param>
    public static CausalLM Load(string dir, ScalarType? dtype = null, Device? device = null)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"{dir}: no such checkpoint folder");
        var config = DecoderConfig.Load(dir);
        using var store = TensorStore.Open(dir);
        string embeddings = config.IsGpt2 ? Gpt2Checkpoint.Prefix(store) + "wte.weight" : "model.embed_tokens.weight";
        if (!store.Contains(embeddings)) throw new InvalidDataException($"{dir}: checkpoint has no '{embeddings}'");
        var compute = dtype ?? Precision.ComputeType(store.Info(embeddings).DType.ToScalarType());
        var model = new CausalLM(config, compute);
        try
        {
            LoadWeights(model, store, dir);
            if (device is not null && device.type != DeviceType.CPU) model.to(device);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        return model;
    }

    static void LoadWeights(CausalLM model, TensorStore store, string dir)
    {
        if (model.Config.IsGpt2) { LoadGpt2(model, store, dir); return; }
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var names = store.Names.ToHashSet(StringComparer.Ordinal);
        var missing = parameters.Keys.Where(k => !names.Contains(k)).Order(StringComparer.Ordinal).ToList();
        var unexpected = names.Where(k => !parameters.ContainsKey(k) && !Ignorable(k)).Order(StringComparer.Ordinal).ToList();
        // A tied checkpoint may still carry a copy of the embeddings as lm_head; accept it only if it is that copy.
        bool redundantHead = model.Config.TieWordEmbeddings && unexpected.Remove(CausalLM.OutputLayer + ".weight");
        if (missing.Count > 0 || unexpected.Count > 0)
            throw new InvalidDataException($"{dir}: checkpoint keys do not match {model.Config.Architecture}: " +
                string.Join("; ", new[] { Listed("missing", missing), Listed("unexpected", unexpected) }.Where(s => s.Length > 0)));

        using var _ = no_grad();
        foreach (var (name, parameter) in parameters)
        {
            using var scope = NewDisposeScope();
            var info = store.Info(name);
            if (!info.Shape.SequenceEqual(parameter.shape))
                throw new InvalidDataException($"{dir}: tensor '{name}' has shape [{string.Join(", ", info.Shape)}] but the config implies [{string.Join(", ", parameter.shape)}]");
            // Same dtype: straight from the mapped file into the parameter's storage (one copy, as PyTorch's load);
            // otherwise into a stored-dtype tensor, converted into the parameter.
            if (info.DType.ToScalarType() == parameter.dtype && parameter.device_type == DeviceType.CPU && parameter.is_contiguous())
                store.LoadInto(name, parameter);
            else
                parameter.copy_(store.Load(name));
        }
        if (redundantHead)
        {
            using var scope = NewDisposeScope();
            var head = store.Load(CausalLM.OutputLayer + ".weight");
            if (!head.to(model.Dtype).equal(parameters["model.embed_tokens.weight"]).all().item<bool>())
                throw new InvalidDataException($"{dir}: tie_word_embeddings is true but 'lm_head.weight' differs from the embeddings");
        }
    }

    /// <summary>GPT-2: every parameter from its mapped checkpoint tensor (<see cref="Gpt2Checkpoint"/>), the same key checks.</summary>
    static void LoadGpt2(CausalLM model, TensorStore store, string dir)
    {
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        string prefix = Gpt2Checkpoint.Prefix(store);
        var sources = Gpt2Checkpoint.Sources(model.Config, prefix);
        var used = sources.Values.Select(s => s.Key).ToHashSet(StringComparer.Ordinal);
        var missing = used.Where(k => !store.Contains(k)).Order(StringComparer.Ordinal).ToList();
        var unexpected = store.Names.Where(k => !used.Contains(k) && !Gpt2Checkpoint.Ignorable(k)).Order(StringComparer.Ordinal).ToList();
        bool redundantHead = unexpected.Remove(CausalLM.OutputLayer + ".weight");
        if (missing.Count > 0 || unexpected.Count > 0)
            throw new InvalidDataException($"{dir}: checkpoint keys do not match {model.Config.Architecture}: " +
                string.Join("; ", new[] { Listed("missing", missing), Listed("unexpected", unexpected) }.Where(s => s.Length > 0)));
        using var _ = no_grad();
        foreach (var (name, parameter) in parameters)
        {
            using var scope = NewDisposeScope();
            var (key, take) = sources[name];
            var value = take(store.Load(key));
            if (!value.shape.SequenceEqual(parameter.shape))
                throw new InvalidDataException($"{dir}: tensor '{key}' has shape [{string.Join(", ", store.Info(key).Shape)}], which does not give the [{string.Join(", ", parameter.shape)}] of '{name}' the config implies");
            parameter.copy_(value);
        }
        if (redundantHead)
        {
            using var scope = NewDisposeScope();
            if (!store.Load(CausalLM.OutputLayer + ".weight").to(model.Dtype).equal(parameters["model.embed_tokens.weight"]).all().item<bool>())
                throw new InvalidDataException($"{dir}: GPT-2 ties lm_head to wte, but 'lm_head.weight' differs from '{prefix}wte.weight'");
        }
    }

    static string Listed(string what, List<string> keys) =>
        keys.Count == 0 ? "" : $"{keys.Count} {what} ({string.Join(", ", keys.Take(8))}{(keys.Count > 8 ? ", ..." : "")})";
}
