using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.Json.Nodes;
using Amalgam.Merging.Recipes;

namespace Amalgam.Merging.Execution;

/// <summary>The files beside the merged tensors: config.json, tokenizer files, the recipe, and a README saying how it was made.</summary>
public static class OutputFolderFiles
{
    /// <summary>Tokenizer and generation files copied from the base when present (Hugging Face and Amalgam names).</summary>
    public static readonly string[] TokenizerFiles =
    [
        "tokenizer.json", "tokenizer_config.json", "tokenizer.amalgam.json", "special_tokens_map.json", "tokenizer.model",
        "vocab.json", "merges.txt", "added_tokens.json", "chat_template.jinja", "chat_template.json", "generation_config.json",
        // mergekit's tagalong files of Whisper and Qwen2-VL (feature extractor, text normaliser)
        "preprocessor_config.json", "normalizer.json",
    ];

    public static string AmalgamVersion =>
        typeof(OutputFolderFiles).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    /// <summary>
    /// Copies config.json with <c>torch_dtype</c> (and <c>vocab_size</c> when embeddings were cut, the layer count for
    /// slices, in the field the family uses: <c>num_hidden_layers</c>, GPT-2's <c>n_layer</c>) updated.
    /// </summary>
    public static void WriteConfig(string fromFolder, string toFolder, string? torchDtype, long? vocabSize, int? layers = null, string layersField = "num_hidden_layers")
    {
        string src = Path.Combine(fromFolder, "config.json");
        if (!File.Exists(src)) return;
        var node = JsonNode.Parse(Inputs.InputFiles.ReadText(src)) as JsonObject ?? throw new InvalidDataException($"{src}: not a JSON object");
        if (torchDtype is not null) node["torch_dtype"] = torchDtype;
        if (vocabSize is not null) node["vocab_size"] = vocabSize;
        if (layers is not null) node[layersField] = layers;
        File.WriteAllText(Path.Combine(toFolder, "config.json"), node.ToJsonString(new() { WriteIndented = true }) + "\n");
    }

    public static IReadOnlyList<string> CopyTokenizer(string fromFolder, string toFolder)
    {
        var copied = new List<string>();
        foreach (var f in TokenizerFiles)
        {
            string src = Path.Combine(fromFolder, f);
            if (!File.Exists(src) && new FileInfo(src).LinkTarget is null) continue;
            // Only regular files inside the input folder are copied: a link to /etc/passwd is not a tokenizer file.
            string real = Inputs.InputFiles.InsideFolder(fromFolder, f)
                ?? throw new InvalidDataException($"{Inputs.Names.Escape(src)}: not a regular file inside {Inputs.Names.Escape(fromFolder)} (a link leading out of it, a FIFO or a device); refusing to copy it into the output");
            File.Copy(real, Path.Combine(toFolder, f));
            copied.Add(f);
        }
        return copied;
    }

    /// <summary>Writes a chosen chat template as chat_template.jinja (replacing copied template files) and into tokenizer_config.json.</summary>
    public static void WriteChatTemplate(string? template, string toFolder)
    {
        if (template is null) return;
        string json = Path.Combine(toFolder, "chat_template.json");
        if (File.Exists(json)) File.Delete(json);
        File.WriteAllText(Path.Combine(toFolder, "chat_template.jinja"), template);
        string config = Path.Combine(toFolder, "tokenizer_config.json");
        if (!File.Exists(config)) return;
        var node = JsonNode.Parse(File.ReadAllText(config)) as JsonObject ?? throw new InvalidDataException($"{config}: not a JSON object");
        node["chat_template"] = template;
        File.WriteAllText(config, node.ToJsonString(new() { WriteIndented = true }) + "\n");
    }

    /// <summary>The plan as YAML (overrides from the command line included), so that the folder says how to make it again.</summary>
    public static void WriteRecipe(MergeRecipe recipe, string toFolder, string? yaml = null) =>
        File.WriteAllText(Path.Combine(toFolder, "merge_recipe.yaml"), yaml ?? recipe.ToYaml());

    /// <summary>A short README: method, inputs, parameters, output, Amalgam version and date, plus any notes (approximations, cut embeddings).</summary>
    public static void WriteReadme(MergeRecipe recipe, MergeOutput output, string toFolder, IReadOnlyList<string> notes, string? extra = null, string? section = null)
    {
        var r = new StringBuilder();
        r.AppendLine(output == MergeOutput.Model ? "# Merged model" : "# Merged LoRA adapter").AppendLine();
        r.AppendLine($"Made with Amalgam {AmalgamVersion} on {DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture)}" +
                     $" by `amalgam merge` (the recipe is in `merge_recipe.yaml`).").AppendLine();
        r.AppendLine($"- method: `{recipe.Method.Name}` — {recipe.Method.Description}");
        if (recipe.BaseModel is not null) r.AppendLine($"- base model: `{recipe.BaseModel}`");
        static string Ps(RecipeModel m) => m.Parameters.Count == 0 ? "" : " — " + string.Join(", ", m.Parameters.Select(p => $"{p.Key}: {p.Value.ToYaml()}"));
        if (recipe.Slices is null)
        {
            r.AppendLine("- models:");
            foreach (var m in recipe.Models) r.AppendLine($"  - `{m.Reference}`{Ps(m)}");
        }
        else
        {
            r.AppendLine($"- slices ({recipe.Slices.Sum(s => s.Length)} layers):");
            foreach (var s in recipe.Slices)
                r.AppendLine("  - " + string.Join("; ", s.Sources.Select(x => $"`{x.Model.Reference}` layers [{x.Start}, {x.End}){Ps(x.Model)}")));
        }
        if (recipe.Parameters.Count > 0)
            r.AppendLine("- parameters: " + string.Join(", ", recipe.Parameters.Select(p => $"{p.Key}: {p.Value.ToYaml()}")));
        r.AppendLine($"- output: {OutputName(output)}{(extra is null ? "" : " — " + extra)}");
        string outDtype = (recipe.OutDtype ?? recipe.Dtype) is { } d ? RecipeDtype.TorchName(d) : "as stored";
        r.AppendLine($"- compute dtype: {RecipeDtype.TorchName(recipe.ComputeDtype)}; output dtype: {outDtype}; random seed: {recipe.RandomSeed}");
        if (notes.Count > 0)
        {
            r.AppendLine().AppendLine("## Notes").AppendLine();
            foreach (var n in notes) r.AppendLine($"- {n}");
        }
        if (section is not null) r.AppendLine().Append(section);
        File.WriteAllText(Path.Combine(toFolder, "README.md"), r.ToString());
    }

    public static string OutputName(MergeOutput o) => MergeRecipe.OutputName(o);
}
