namespace Amalgam.Merging.Recipes;

/// <summary>
/// A multi-stage merge (mergekit-multi): named merges, each a <see cref="MergeRecipe"/>, that may use one another's
/// outputs as models or base by name. <see cref="Stages"/> are in dependency order; the last is the output (the one
/// stage no other stage uses). A file with one unnamed document is a plan of one stage.
/// </summary>
public sealed record MergePlan(IReadOnlyList<MergeRecipe> Stages)
{
    public MergeRecipe Final => Stages[^1];

    public static MergePlan Load(string file, Func<string, IMergeMethod>? methods = null) =>
        Parse(File.ReadAllText(file), System.IO.Path.GetFileName(file), methods);

    public static MergePlan Parse(string yaml, string source = "recipe", Func<string, IMergeMethod>? methods = null) =>
        Ordered(RecipeParser.ParseStages(yaml, source, methods ?? MergeMethods.Get), source);

    /// <summary>The same change to every stage (command-line overrides such as the seed).</summary>
    public MergePlan With(Func<MergeRecipe, MergeRecipe> change) => new(Stages.Select(change).ToList());

    /// <summary>Every stage as one YAML document, in dependency order.</summary>
    public string ToYaml() => string.Join("---\n", Stages.Select(s => s.ToYaml()));

    /// <summary>Dependency order (depth first, stable in file order); refuses unknown references, cycles and more than one final stage.</summary>
    static MergePlan Ordered(IReadOnlyList<MergeRecipe> stages, string source)
    {
        if (stages.Count == 1) return new(stages);
        var byName = stages.ToDictionary(s => s.Name!, StringComparer.Ordinal);
        var used = stages.SelectMany(s => s.References).ToHashSet(StringComparer.Ordinal);
        var finals = stages.Where(s => !used.Contains(s.Name!)).ToList();
        if (finals.Count != 1)
            throw new InvalidDataException($"{source}: {finals.Count} stages are not used by any other ({string.Join(", ", finals.Select(f => f.Name))}); a multi-stage recipe has exactly one final merge");
        var order = new List<MergeRecipe>();
        var state = new Dictionary<string, int>(StringComparer.Ordinal); // 1 = visiting, 2 = done
        void Visit(MergeRecipe s, List<string> path)
        {
            if (state.TryGetValue(s.Name!, out int st))
            {
                if (st == 1) throw new InvalidDataException($"{source}: {s.Name}: the stages refer to each other in a cycle ({string.Join(" → ", path.Append(s.Name!))})");
                return;
            }
            state[s.Name!] = 1;
            foreach (var r in s.References.Distinct()) Visit(byName[r], [.. path, s.Name!]);
            state[s.Name!] = 2;
            order.Add(s);
        }
        Visit(finals[0], []);
        var unused = stages.Where(s => !state.ContainsKey(s.Name!)).Select(s => s.Name).ToList();
        if (unused.Count > 0) throw new InvalidDataException($"{source}: {string.Join(", ", unused)}: not needed by the final merge {finals[0].Name}");
        return new(order);
    }

    /// <summary>The stage with its references to earlier stages replaced by their output folders.</summary>
    public static MergeRecipe Resolve(MergeRecipe stage, IReadOnlyDictionary<string, string> outputs)
    {
        RecipeModel R(RecipeModel m) => m.Stage is { } s ? m with { Path = outputs[s], Stage = null } : m;
        return stage with
        {
            BaseModel = stage.BaseStage is { } b ? outputs[b] : stage.BaseModel,
            BaseStage = null,
            Models = stage.Models.Select(R).ToList(),
            Slices = stage.Slices?.Select(sl => new RecipeSlice(sl.Sources.Select(x => x with { Model = R(x.Model) }).ToList())).ToList(),
        };
    }
}
