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
        var output = recipe.Output ?? (inputs.AllLora ? MergeOutput.Adapter : MergeOutput.Model);
        if (recipe.Rank is not null && output != MergeOutput.Adapter)
            throw new InvalidDataException($"{recipe.Source}: rank: only used with output: adapter");
        if (recipe.PeftDoubleScale && output != MergeOutput.Adapter)
            throw new InvalidDataException($"{recipe.Source}: peft_double_scale: only used with LoRA inputs and output: adapter (PEFT's svd types)");
        return output == MergeOutput.Model
            ? StreamingMerge.Run(inputs, outDir, options)
            : AdapterMerge.Run(inputs, output, outDir, options);
    }
}
