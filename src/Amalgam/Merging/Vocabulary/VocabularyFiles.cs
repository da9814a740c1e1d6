using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Amalgam.Merging.Execution;
using Amalgam.Tokenizers;

namespace Amalgam.Merging.Vocabulary;

/// <summary>
/// The output's tokenizer files for a <see cref="VocabularyPlan"/>: the source folder's files, with the vocabulary
/// file rewritten when the output vocabulary differs from it — tokenizer.json gets the new tokens in
/// <c>added_tokens</c> (and tokenizer_config.json in <c>added_tokens_decoder</c>), as transformers' <c>add_tokens</c>
/// and <c>save_pretrained</c> write them; tokens past config.json's <c>vocab_size</c> are dropped (with the merges
/// that use them); a tokenizer.amalgam.json gets the tokens appended to its list. Files that would disagree with the
/// rewritten one (slow-tokenizer vocab.json/merges.txt/added_tokens.json, tokenizer.model) are left out.
/// </summary>
internal static class VocabularyFiles
{
    static readonly string[] SlowFiles = ["vocab.json", "merges.txt", "added_tokens.json", "tokenizer.model"];
    static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Writes the files into <paramref name="toFolder"/>; returns a note when files were rewritten or left out.</summary>
    public static string? Write(VocabularyPlan plan, string toFolder)
    {
        var source = plan.Output;
        bool stripped = source.RowLimit is { } limit && HasIdsAtOrAbove(source, limit);
        bool rewrite = plan.Appended.Count > 0 || stripped;
        if (!rewrite)
        {
            OutputFolderFiles.CopyTokenizer(source.Folder, toFolder);
            return null;
        }
        if (source.File == SentencePieceModelTokenizer.FileName)
            throw new InvalidDataException($"{source.Folder}: the output vocabulary adds tokens to a tokenizer.model-only tokenizer; a vocabulary union needs tokenizer.json (or tokenizer.amalgam.json)");
        var copied = OutputFolderFiles.CopyTokenizer(source.Folder, toFolder);
        var dropped = new List<string>();
        foreach (var f in SlowFiles.Concat(source.File == AmalgamTokenizer.FileName ? [HuggingFaceBpeTokenizer.FileName] : [AmalgamTokenizer.FileName]))
            if (copied.Contains(f)) { File.Delete(Path.Combine(toFolder, f)); dropped.Add(f); }
        if (source.File == AmalgamTokenizer.FileName) WriteAmalgam(plan, toFolder);
        else WriteTokenizerJson(plan, toFolder);
        return dropped.Count == 0 ? null : $"tokenizer files left out because they would disagree with the merged {source.File}: {string.Join(", ", dropped)}";
    }

    static bool HasIdsAtOrAbove(FolderVocabulary v, int limit)
    {
        string path = Path.Combine(v.Folder, v.File);
        if (v.File == AmalgamTokenizer.FileName) return AmalgamTokenizer.Load(path).Tokens.Count > limit;
        if (v.File != HuggingFaceBpeTokenizer.FileName) return false;
        var root = JsonNode.Parse(Inputs.InputFiles.ReadTextInFolder(path))!;
        return (root["model"]?["vocab"] as JsonObject)!.Any(kv => kv.Value!.GetValue<int>() >= limit)
            || (root["added_tokens"] as JsonArray)?.Any(a => a!["id"]!.GetValue<int>() >= limit) == true;
    }

    static void WriteAmalgam(VocabularyPlan plan, string toFolder)
    {
        var old = AmalgamTokenizer.Load(Path.Combine(plan.Output.Folder, AmalgamTokenizer.FileName));
        if (plan.Tokens.Any(t => t is null)) throw new InvalidDataException($"{plan.Output.Folder}: the output vocabulary has ids without a token, which tokenizer.amalgam.json cannot hold");
        new AmalgamTokenizer(plan.Tokens.Select(t => t!).ToList(), old.Bos, old.Eos, old.Pad, old.Unk).Save(Path.Combine(toFolder, AmalgamTokenizer.FileName));
    }

    static void WriteTokenizerJson(VocabularyPlan plan, string toFolder)
    {
        string from = Path.Combine(plan.Output.Folder, HuggingFaceBpeTokenizer.FileName);
        var root = (JsonObject)JsonNode.Parse(Inputs.InputFiles.ReadTextInFolder(from))!;
        var model = (JsonObject)root["model"]!;
        var vocab = (JsonObject)model["vocab"]!;
        if (plan.Output.RowLimit is { } limit)
        {
            // mergekit's get_stripped_tokenizer: ids past the embedding rows are not tokens.
            var gone = vocab.Where(kv => kv.Value!.GetValue<int>() >= limit).Select(kv => kv.Key).ToHashSet(StringComparer.Ordinal);
            foreach (var g in gone) vocab.Remove(g);
            if (gone.Count > 0 && model["merges"] is JsonArray merges)
                foreach (var m in merges.ToList())
                {
                    var parts = m is JsonArray pair ? pair.Select(x => x!.GetValue<string>()) : m!.GetValue<string>().Split(' ');
                    if (parts.Any(gone.Contains)) merges.Remove(m);
                }
            if (root["added_tokens"] is JsonArray a0)
                foreach (var a in a0.ToList()) if (a!["id"]!.GetValue<int>() >= limit) a0.Remove(a);
        }
        if (root["added_tokens"] is not JsonArray added) root["added_tokens"] = added = [];
        foreach (var a in plan.Appended) added.Add(a.Entry.DeepClone());
        File.WriteAllText(Path.Combine(toFolder, HuggingFaceBpeTokenizer.FileName), root.ToJsonString(Indented) + "\n");

        string config = Path.Combine(toFolder, "tokenizer_config.json");
        if (!File.Exists(config)) return;
        var cfg = JsonNode.Parse(File.ReadAllText(config)) as JsonObject ?? throw new InvalidDataException($"{config}: not a JSON object");
        if (cfg["added_tokens_decoder"] is JsonObject decoder)
        {
            if (plan.Output.RowLimit is { } l)
                foreach (var k in decoder.Select(kv => kv.Key).Where(k => int.TryParse(k, out int id) && id >= l).ToList()) decoder.Remove(k);
            foreach (var a in plan.Appended)
            {
                var e = (JsonObject)a.Entry.DeepClone();
                e.Remove("id");
                decoder[a.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)] = e;
            }
            File.WriteAllText(config, cfg.ToJsonString(Indented) + "\n");
        }
    }
}
