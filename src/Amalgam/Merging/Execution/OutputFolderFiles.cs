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
    ];

    public static string AmalgamVersion =>
        typeof(OutputFolderFiles).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    /// <summary>Copies config.json with <c>torch_dtype</c> (and <c>vocab_size</c>, when embeddings were cut) updated.</summary>
    public static void WriteConfig(string fromFolder, string toFolder, string? torchDtype, long? vocabSize)
    {
        string src = Path.Combine(fromFolder, "config.json");
        if (!File.Exists(src)) return;
        var node = JsonNode.Parse(Inputs.InputFiles.ReadText(src)) as JsonObject ?? throw new InvalidDataException($"{src}: not a JSON object");
        if (torchDtype is not null) node["torch_dtype"] = torchDtype;
        if (vocabSize is not null) node["vocab_size"] = vocabSize;
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

    public static void WriteRecipe(MergeRecipe recipe, string toFolder) =>
        File.WriteAllText(Path.Combine(toFolder, "merge_recipe.yaml"), recipe.Yaml.EndsWith('\n') ? recipe.Yaml : recipe.Yaml + "\n");

    /// <summary>A short README: method, inputs, parameters, output, Amalgam version and date, plus any notes (approximations, cut embeddings).</summary>
    public static void WriteReadme(MergeRecipe recipe, MergeOutput output, string toFolder, IReadOnlyList<string> notes, string? extra = null)
    {
        var r = new StringBuilder();
        r.AppendLine(output == MergeOutput.Model ? "# Merged model" : "# Merged LoRA adapter").AppendLine();
        r.AppendLine($"Made with Amalgam {AmalgamVersion} on {DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture)}" +
                     $" by `amalgam merge` (the recipe is in `merge_recipe.yaml`).").AppendLine();
        r.AppendLine($"- method: `{recipe.Method.Name}` — {recipe.Method.Description}");
        if (recipe.BaseModel is not null) r.AppendLine($"- base model: `{recipe.BaseModel}`");
        r.AppendLine("- models:");
        foreach (var m in recipe.Models)
        {
            string ps = m.Parameters.Count == 0 ? "" : " — " + string.Join(", ", m.Parameters.Select(p => $"{p.Key}: {p.Value.ToYaml()}"));
            r.AppendLine($"  - `{m.Path}`{ps}");
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
        File.WriteAllText(Path.Combine(toFolder, "README.md"), r.ToString());
    }

    public static string OutputName(MergeOutput o) => o switch
    {
        MergeOutput.Model => "model",
        MergeOutput.Adapter => "adapter",
        MergeOutput.Cat => "cat",
        MergeOutput.FactorLinear => "factor_linear",
        _ => o.ToString(),
    };
}
