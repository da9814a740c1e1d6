using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Amalgam.Merging.Execution;
using Amalgam.Merging.Recipes;
using Amalgam.Models;
using Amalgam.Tensors;
using static TorchSharp.torch;

namespace Amalgam.Merging.Moe;

/// <summary>
/// mergekit-moe's Mixtral output (mergekit/moe/mixtral.py), streamed one tensor at a time: every tensor of the base
/// except its MLPs is copied; expert E's <c>mlp.gate_proj/down_proj/up_proj</c> become
/// <c>block_sparse_moe.experts.E.w1/w2/w3</c> (plus N(0, noise_scale²) noise, and down_proj × residual_scale, when
/// given); each layer's router <c>block_sparse_moe.gate.weight</c> is its [experts, hidden] row of
/// <see cref="MoeGates"/>. config.json is the base's with architectures MixtralForCausalLM, num_local_experts,
/// num_experts_per_tok and sliding_window null; the base's tokenizer files are copied. Base and experts must all be
/// Llama or all Mistral (as mergekit's Mixtral output requires), without biases, with equal shapes.
/// </summary>
public static class MoeMerge
{
    public static MergeSummary Run(MoeRecipe recipe, string outDir, MergeRunOptions? options = null)
    {
        var clock = Stopwatch.StartNew();
        OutputGuard.Check(outDir, [recipe.BaseModel, .. recipe.Experts.Select(e => e.SourceModel), .. recipe.SharedExperts.Select(e => e.SourceModel)]);
        var config = CheckInputs(recipe);
        var notes = new List<string>();
        // The Qwen output's shared expert gets its gate like one more expert (mergekit: gate_vecs[:, len(experts):]).
        using var gates = MoeGates.Compute(recipe with { Experts = [.. recipe.Experts, .. recipe.SharedExperts] }, recipe.BaseModel, config);
        if (MoeGates.DegenerateLayers(gates) is { Count: > 0 } degenerate)
            notes.Add($"layer{(degenerate.Count > 1 ? "s" : "")} {string.Join(", ", degenerate)} of {config.NumHiddenLayers} {(degenerate.Count > 1 ? "have" : "has")} degenerate routing parameters (condition number above 5): the prompts may be too similar, and some experts will be underused");
        if ((recipe.Experts.Count & (recipe.Experts.Count - 1)) != 0)
            notes.Add($"{recipe.Experts.Count} experts is not a power of two (llama.cpp cannot load such a model; transformers and Amalgam can)");

        using var baseStore = TensorStore.Open(recipe.BaseModel);
        var stores = new List<TensorStore>();
        try
        {
            foreach (var e in recipe.Experts.Concat(recipe.SharedExperts)) stores.Add(TensorStore.Open(e.SourceModel));
            var plan = Plan(recipe, baseStore, stores, config);
            long read = 0;
            AtomicDirectory.Write(outDir, staging =>
            {
                using (var writer = new ShardedCheckpointWriter(staging, plan.Select(p => p.Spec).ToList(), recipe.OutShardSize, new Dictionary<string, string> { ["format"] = "pt" }))
                {
                    for (int i = 0; i < plan.Count; i++)
                    {
                        var p = plan[i];
                        options?.Progress?.Invoke(new MergeProgress("writing", i, plan.Count, p.Spec.Name));
                        using var scope = NewDisposeScope();
                        Tensor t;
                        if (p.Layer is int layer) t = p.SharedGate ? gates[layer].narrow(0, recipe.Experts.Count, 1) : gates[layer].narrow(0, 0, recipe.Experts.Count);
                        else if (p.SourceName is null) t = zeros(p.Spec.Shape); // mergekit: "qwen 2 moe wants attention bias, give it zeros"
                        else
                        {
                            var store = p.Expert is int e ? stores[e] : baseStore;
                            read += store.Info(p.SourceName!).ByteLength;
                            t = store.Load(p.SourceName!);
                            if (p.Expert is int ex) t = NoiseAndScale(t, ex < recipe.Experts.Count ? recipe.Experts[ex] : recipe.SharedExperts[0], recipe.RandomSeed, p.Spec.Name);
                        }
                        writer.Write(p.Spec.Name, t.to(p.Spec.DType.ToScalarType()).contiguous());
                    }
                    writer.Commit();
                }
                WriteConfig(recipe, config, plan, staging);
                OutputFolderFiles.CopyTokenizer(recipe.BaseModel, staging);
                File.WriteAllText(Path.Combine(staging, "mergekit_moe_config.yml"), recipe.Text ?? "");
                WriteReadme(recipe, staging, notes);
            });
            int routers = config.NumHiddenLayers * (recipe.Qwen ? 2 : 1);
            return new MergeSummary(Path.GetFullPath(outDir), MergeOutput.Model, routers, plan.Count - routers, read, plan.Sum(p => p.Spec.ByteLength), clock.Elapsed, notes);
        }
        finally
        {
            foreach (var s in stores) s.Dispose();
        }
    }

    /// <summary>One output tensor: from the base (Expert null), from an expert's MLP, or a layer's router.</summary>
    sealed record Planned(TensorSpec Spec, string? SourceName, int? Expert, int? Layer, bool SharedGate = false);

    static DecoderConfig CheckInputs(MoeRecipe recipe)
    {
        DecoderConfig Load(string dir, string field)
        {
            if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"{recipe.Source}: {field}: {dir}: no such checkpoint folder");
            var c = DecoderConfig.Load(dir);
            if (recipe.Qwen)
            {
                if (c.Architecture is not ("LlamaForCausalLM" or "MistralForCausalLM" or "Qwen2ForCausalLM"))
                    throw new NotSupportedException($"{recipe.Source}: {field}: {c.Architecture} cannot become a Qwen2-MoE expert (mergekit-moe's Qwen output takes Qwen2, Llama or Mistral models)");
                if (c.MlpBias || c.OutputBias) throw new NotSupportedException($"{recipe.Source}: {field}: {(c.MlpBias ? "mlp_bias" : "attention_bias")} is true, but Qwen2-MoE has biases only on q/k/v");
                return c;
            }
            if (c.Architecture is not ("LlamaForCausalLM" or "MistralForCausalLM"))
                throw new NotSupportedException($"{recipe.Source}: {field}: {c.Architecture} cannot become a Mixtral expert (mergekit-moe's Mixtral output takes Llama or Mistral models; give architecture: qwen with one shared expert for its Qwen2-MoE output)");
            if (c.AttentionBias || c.MlpBias)
                throw new NotSupportedException($"{recipe.Source}: {field}: {(c.AttentionBias ? "attention_bias" : "mlp_bias")} is true, but Mixtral layers have no biases");
            return c;
        }
        var config = Load(recipe.BaseModel, "base_model");
        for (int i = 0; i < recipe.Experts.Count; i++)
        {
            var c = Load(recipe.Experts[i].SourceModel, $"experts[{i}].source_model");
            if (c.Architecture != config.Architecture)
                throw new InvalidDataException($"{recipe.Source}: experts[{i}].source_model: {c.Architecture} differs from the base's {config.Architecture}; a Mixtral MoE needs every model of one architecture");
        }
        for (int i = 0; i < recipe.SharedExperts.Count; i++)
            if (Load(recipe.SharedExperts[i].SourceModel, $"shared_experts[{i}].source_model") is var c && c.Architecture != config.Architecture)
                throw new InvalidDataException($"{recipe.Source}: shared_experts[{i}].source_model: {c.Architecture} differs from the base's {config.Architecture}; mergekit's Qwen MoE output needs every model of one architecture");
        return config;
    }

    static List<Planned> Plan(MoeRecipe recipe, TensorStore baseStore, List<TensorStore> experts, DecoderConfig config)
    {
        var dtype = recipe.Dtype?.ToDType() ?? (config.TorchDtype is { } d && RecipeDtype.TryParse(d, out var t) ? t.ToDType() : (DType?)null);
        var plan = new List<Planned>();
        foreach (var name in baseStore.Names.Order(StringComparer.Ordinal))
        {
            var info = baseStore.Info(name);
            bool isFloat = info.DType is DType.F32 or DType.F16 or DType.BF16;
            var outType = isFloat && dtype is { } o ? o : info.DType;
            if (!name.Contains(".mlp.", StringComparison.Ordinal))
            {
                plan.Add(new(new TensorSpec(name, outType, info.Shape), name, null, null));
                continue;
            }
            if (recipe.Qwen)
            {
                // mergekit/moe/qwen.py: mlp.X → mlp.experts.E.X for each expert, and mlp.shared_expert.X from the shared one.
                for (int e = 0; e <= recipe.Experts.Count; e++)
                {
                    string field = e < recipe.Experts.Count ? $"{recipe.Source}: experts[{e}].source_model" : $"{recipe.Source}: shared_experts[0].source_model";
                    if (!experts[e].Contains(name)) throw new InvalidDataException($"{field}: has no tensor '{name}'");
                    var x = experts[e].Info(name);
                    if (!x.Shape.SequenceEqual(info.Shape))
                        throw new InvalidDataException($"{field}: tensor '{name}' has shape [{string.Join(", ", x.Shape)}], the base's [{string.Join(", ", info.Shape)}]");
                    string outName = name.Replace(".mlp.", e < recipe.Experts.Count ? $".mlp.experts.{e.ToString(CultureInfo.InvariantCulture)}." : ".mlp.shared_expert.", StringComparison.Ordinal);
                    plan.Add(new(new TensorSpec(outName, outType, info.Shape), name, e, null));
                }
                continue;
            }
            string renamed = name.Replace(".mlp.gate_proj", ".block_sparse_moe.experts.{E}.w1", StringComparison.Ordinal)
                .Replace(".mlp.down_proj", ".block_sparse_moe.experts.{E}.w2", StringComparison.Ordinal)
                .Replace(".mlp.up_proj", ".block_sparse_moe.experts.{E}.w3", StringComparison.Ordinal);
            if (renamed == name) throw new InvalidDataException($"{recipe.BaseModel}: tensor '{name}' is an MLP tensor a Mixtral expert does not have");
            for (int e = 0; e < experts.Count; e++)
            {
                string field = $"{recipe.Source}: experts[{e}].source_model";
                if (!experts[e].Contains(name)) throw new InvalidDataException($"{field}: {recipe.Experts[e].SourceModel} has no tensor '{name}'");
                var x = experts[e].Info(name);
                if (!x.Shape.SequenceEqual(info.Shape))
                    throw new InvalidDataException($"{field}: tensor '{name}' has shape [{string.Join(", ", x.Shape)}], the base's [{string.Join(", ", info.Shape)}]");
                plan.Add(new(new TensorSpec(renamed.Replace("{E}", e.ToString(CultureInfo.InvariantCulture)), outType, info.Shape), name, e, null));
            }
        }
        var gateType = dtype ?? baseStore.Info("model.embed_tokens.weight").DType;
        if (recipe.Qwen)
        {
            for (int layer = 0; layer < config.NumHiddenLayers; layer++)
            {
                plan.Add(new(new TensorSpec($"model.layers.{layer}.mlp.gate.weight", gateType, [recipe.Experts.Count, config.HiddenSize]), null, null, layer));
                plan.Add(new(new TensorSpec($"model.layers.{layer}.mlp.shared_expert_gate.weight", gateType, [1, config.HiddenSize]), null, null, layer, SharedGate: true));
                // Qwen2-MoE has q/k/v biases: zeros where a Llama or Mistral base has none (as mergekit writes them).
                foreach (var (proj, width) in new[] { ("q_proj", config.NumAttentionHeads * config.HeadDim), ("k_proj", config.KeyValueHeads * config.HeadDim), ("v_proj", config.KeyValueHeads * config.HeadDim) })
                {
                    string bias = $"model.layers.{layer}.self_attn.{proj}.bias";
                    if (!baseStore.Contains(bias)) plan.Add(new(new TensorSpec(bias, gateType, [width]), null, null, null));
                }
            }
            return plan;
        }
        for (int layer = 0; layer < config.NumHiddenLayers; layer++)
            plan.Add(new(new TensorSpec($"model.layers.{layer}.block_sparse_moe.gate.weight", gateType, [experts.Count, config.HiddenSize]), null, null, layer));
        return plan;
    }

    /// <summary>mergekit's noise_and_scale: + N(0, noise_scale²) (seeded by random_seed and the output name), then down_proj × residual_scale.</summary>
    static Tensor NoiseAndScale(Tensor t, MoeExpertSpec expert, long seed, string outName)
    {
        bool down = outName.EndsWith(".w2.weight", StringComparison.Ordinal) || outName.EndsWith(".down_proj.weight", StringComparison.Ordinal);
        if (expert.NoiseScale is null && (expert.ResidualScale is null || !down)) return t;
        var x = t.to(ScalarType.Float32);
        if (expert.NoiseScale is double n)
        {
            using var g = TensorSeed.Generator(seed, outName);
            x = x + randn(x.shape, generator: g) * n;
        }
        if (expert.ResidualScale is double r && down) x = x * r;
        return x;
    }

    static void WriteConfig(MoeRecipe recipe, DecoderConfig config, List<Planned> plan, string staging)
    {
        string src = Path.Combine(recipe.BaseModel, "config.json");
        var node = JsonNode.Parse(Inputs.InputFiles.ReadText(src)) as JsonObject ?? throw new InvalidDataException($"{src}: not a JSON object");
        if (recipe.Qwen)
        {
            // mergekit/moe/qwen.py's _generate_config: Qwen2MoeConfig(**base) with these set.
            node["architectures"] = new JsonArray("Qwen2MoeForCausalLM");
            node["model_type"] = "qwen2_moe";
            node["num_experts"] = recipe.Experts.Count;
            node["num_experts_per_tok"] = recipe.ExpertsPerToken;
            node["decoder_sparse_step"] = 1;
            node["norm_topk_prob"] = true;
            node["sliding_window"] = null;
            node["use_sliding_window"] = false;
            node["shared_expert_intermediate_size"] = config.IntermediateSize;
            node["moe_intermediate_size"] = config.IntermediateSize;
            node["mlp_only_layers"] = new JsonArray();
        }
        else
        {
            node["architectures"] = new JsonArray("MixtralForCausalLM");
            node["model_type"] = "mixtral";
            node["num_local_experts"] = recipe.Experts.Count;
            node["num_experts_per_tok"] = recipe.ExpertsPerToken;
            node["sliding_window"] = null;
            node["router_jitter_noise"] ??= 0.0;
        }
        // Both configs' defaults differ from Llama's (Mixtral: eps 1e-5, theta 1e6): the base's values are written out.
        node["rms_norm_eps"] = config.RmsNormEps;
        node["rope_theta"] = config.RopeTheta;
        node["num_key_value_heads"] = config.KeyValueHeads;
        node["head_dim"] = config.HeadDim;
        node["router_aux_loss_coef"] ??= 0.001;
        node["output_router_logits"] ??= false;
        var types = plan.Select(p => p.Spec.DType).Where(t => t is DType.F32 or DType.F16 or DType.BF16).Distinct().ToList();
        if (types.Count == 1) node["torch_dtype"] = RecipeDtype.TorchName(types[0].ToScalarType());
        File.WriteAllText(Path.Combine(staging, "config.json"), node.ToJsonString(new() { WriteIndented = true }) + "\n");
    }

    static void WriteReadme(MoeRecipe recipe, string staging, IReadOnlyList<string> notes)
    {
        var r = new StringBuilder();
        r.AppendLine(recipe.Qwen ? "# Sparse mixture of experts (Qwen2-MoE)" : "# Sparse mixture of experts (Mixtral)").AppendLine();
        if (recipe.SharedExperts.Count > 0) r.AppendLine($"- shared expert (every token, behind its sigmoid gate): `{recipe.SharedExperts[0].SourceModel}`");
        r.AppendLine($"Made with Amalgam {OutputFolderFiles.AmalgamVersion} on {DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture)}" +
                     " by `amalgam merge` from a mergekit-moe config (in `mergekit_moe_config.yml`).").AppendLine();
        r.AppendLine($"- base model (attention, norms, embeddings): `{recipe.BaseModel}`");
        r.AppendLine($"- experts ({recipe.Experts.Count}, {recipe.ExpertsPerToken} per token):");
        for (int i = 0; i < recipe.Experts.Count; i++)
        {
            var e = recipe.Experts[i];
            r.AppendLine($"  - {i}: `{e.SourceModel}` — {e.PositivePrompts.Count} positive, {e.NegativePrompts.Count} negative prompts" +
                         (e.NoiseScale is { } n ? $", noise_scale {n}" : "") + (e.ResidualScale is { } s ? $", residual_scale {s}" : ""));
        }
        r.AppendLine($"- gate_mode: `{recipe.GateMode}`; random seed: {recipe.RandomSeed}; dtype: {(recipe.Dtype is { } d ? RecipeDtype.TorchName(d) : "the base's")}");
        if (notes.Count > 0)
        {
            r.AppendLine().AppendLine("## Notes").AppendLine();
            foreach (var n in notes) r.AppendLine($"- {n}");
        }
        File.WriteAllText(Path.Combine(staging, "README.md"), r.ToString());
    }
}
