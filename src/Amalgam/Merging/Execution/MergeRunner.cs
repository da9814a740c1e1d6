using Amalgam.Merging.Lora;
using Amalgam.Merging.Recipes;

namespace Amalgam.Merging.Execution;

/// <summary>The library entry point of <c>amalgam merge</c>: opens the inputs, picks the output kind, runs the merge.</summary>
public static class MergeRunner
{
    public static MergeSummary Run(MergeRecipe recipe, string outDir, MergeRunOptions? options = null)
    {
        Tensors.OutputGuard.Check(outDir, [recipe.BaseModel, .. recipe.Models.Select(m => m.Path)]);
        using var inputs = new MergeInputSet(recipe);
        var output = recipe.Output ?? (inputs.AllLora && recipe.Slices is null ? MergeOutput.Adapter : MergeOutput.Model);
        if (recipe.PeftDoubleScale && (output != MergeOutput.Adapter || !inputs.AllLora))
            throw new InvalidDataException($"{recipe.Source}: peft_double_scale: only used with LoRA inputs and output: adapter (PEFT's svd types)");
        if (recipe.Tokenizer is { } t && output != MergeOutput.Model)
            throw new InvalidDataException($"{recipe.Source}: {(t.Block ? "tokenizer" : "tokenizer_source")}: only for output: model (an adapter carries no embeddings or tokenizer files); LoRA inputs default to output: adapter");
        return output == MergeOutput.Model
            ? StreamingMerge.Run(inputs, outDir, options)
            : AdapterMerge.Run(inputs, output, outDir, options);
    }

    /// <summary>
    /// A multi-stage plan: each stage in dependency order, the intermediate ones into a temporary folder beside
    /// the output (removed afterwards, also on failure), the final one into <paramref name="outDir"/>.
    /// </summary>
    public static MergeSummary Run(MergePlan plan, string outDir, MergeRunOptions? options = null)
    {
        if (plan.Stages.Count == 1) return Run(plan.Final, outDir, options);
        string full = Path.GetFullPath(outDir).TrimEnd('/');
        string scratch = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.stages-{Guid.NewGuid():N}");
        var outputs = new Dictionary<string, string>(StringComparer.Ordinal);
        var notes = new List<string>();
        try
        {
            int k = 0;
            foreach (var stage in plan.Stages.Take(plan.Stages.Count - 1))
            {
                // By position: a stage's name may be a path (mergekit-mega's out_path).
                string dir = Path.Combine(scratch, $"stage-{k++}");
                var s = Run(MergePlan.Resolve(stage, outputs) with { Output = stage.Output ?? MergeOutput.Model }, dir, options is null ? null : options with { RecipeYaml = null });
                notes.Add($"stage {stage.Name}: {s.TensorsMerged} tensors merged with {stage.Method.Name}");
                notes.AddRange(s.Notes.Select(n => $"stage {stage.Name}: {n}"));
                outputs[stage.Name!] = dir;
            }
            // Intermediates' folders are gone afterwards: the output's merge_recipe.yaml is the whole plan, by stage names.
            var final = Run(MergePlan.Resolve(plan.Final, outputs), outDir, (options ?? new()) with { RecipeYaml = plan.ToYaml() });
            return final with { Notes = [.. notes, .. final.Notes] };
        }
        finally
        {
            if (Directory.Exists(scratch)) Directory.Delete(scratch, recursive: true);
        }
    }
}
