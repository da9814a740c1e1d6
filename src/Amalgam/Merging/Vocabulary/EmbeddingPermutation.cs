using Amalgam.Merging.Execution;
using static TorchSharp.torch;

namespace Amalgam.Merging.Vocabulary;

/// <summary>
/// Every input's embed_tokens / lm_head rows put in the output vocabulary's order before the merge, with mergekit's
/// rows for tokens an input lacks (mergekit/tokenizer/embed.py, <c>PermutedEmbeddings</c>). The default row of a token:
/// <list type="number">
/// <item>its <c>tokens:</c> entry: a model's row for it, a model's row of another token (<c>model_token</c>), or zeros;</item>
/// <item>else, by how many of this tensor's inputs have it: one → that input's row; none → zeros; several → the
/// base's row when the base has it, else the mean of the rows of the inputs that have it.</item>
/// </list>
/// Each input keeps its own row where it has the token (unless the entry says <c>force: true</c>) and takes the
/// default elsewhere; rows past the vocabulary (<c>pad_to_multiple_of</c>) are the mean of that input's first
/// <see cref="VocabularyPlan.Size"/> permuted rows.
/// </summary>
internal static class EmbeddingPermutation
{
    /// <summary>The permuted tensors, in the order of <paramref name="inputs"/>; call inside the key's dispose scope.</summary>
    public static IReadOnlyList<Tensor> Apply(VocabularyPlan plan, string name, IReadOnlyList<(IMergeSource Source, Tensor Rows)> inputs)
    {
        int n = plan.Size;
        var distinct = new List<(IMergeSource Source, Tensor Rows)>();
        foreach (var x in inputs) if (!distinct.Any(d => ReferenceEquals(d.Source, x.Source))) distinct.Add(x);
        var dtype = distinct[0].Rows.dtype;
        long hidden = distinct[0].Rows.shape[1];
        foreach (var (s, rows) in distinct)
        {
            if (rows.dim() != 2 || rows.shape[1] != hidden)
                throw new InvalidDataException($"tensor '{name}': shape [{string.Join(", ", rows.shape)}] in {s.Path} does not match [{n}, {hidden}] of the others (embedding sizes must match)");
            int max = plan.Permutations[s].Max();
            if (max >= rows.shape[0])
                throw new InvalidDataException($"tensor '{name}': {s.Path}'s tokenizer has id {max} but the tensor has {rows.shape[0]} rows");
        }

        // Per output id: each input's weight in the default row, and the divisor (the count, for a mean).
        var weights = distinct.Select(_ => new float[n]).ToArray();
        var divisor = new float[n];
        var force = new bool[n];
        var fromRow = new List<(int Id, int Input, int Row)>();
        for (int t = 0; t < n; t++)
        {
            divisor[t] = 1;
            if (plan.Explicit.TryGetValue(t, out var e))
            {
                force[t] = e.Setting.Force;
                if (e.Source is null) continue; // zeros
                int i = distinct.FindIndex(d => ReferenceEquals(d.Source, e.Source));
                if (i < 0) throw new InvalidDataException($"tensor '{name}': tokenizer.tokens[{Inputs.Names.Escape(e.Token)}] takes its row from {e.Source.Path}, which is not an input of this tensor");
                if (e.Setting.Source is ModelTokenSource && e.Row >= distinct[i].Rows.shape[0])
                    throw new InvalidDataException($"tensor '{name}': tokenizer.tokens[{Inputs.Names.Escape(e.Token)}].source.token_id {e.Row} is out of range for {e.Source.Path} ({distinct[i].Rows.shape[0]} rows)");
                fromRow.Add((t, i, e.Row));
                continue;
            }
            int count = 0, only = -1;
            for (int i = 0; i < distinct.Count; i++) if (plan.Permutations[distinct[i].Source][t] >= 0) { count++; only = i; }
            if (count == 0) continue;
            if (count == 1) { weights[only][t] = 1; continue; }
            int b = plan.Base is null ? -1 : distinct.FindIndex(d => ReferenceEquals(d.Source, plan.Base));
            if (b >= 0 && plan.Permutations[plan.Base!][t] >= 0) { weights[b][t] = 1; continue; }
            for (int i = 0; i < distinct.Count; i++) if (plan.Permutations[distinct[i].Source][t] >= 0) weights[i][t] = 1;
            divisor[t] = count;
        }

        var gathered = new Tensor[distinct.Count];
        var present = new Tensor[distinct.Count];
        var defaults = zeros(n, hidden, dtype: dtype);
        for (int i = 0; i < distinct.Count; i++)
        {
            var p = plan.Permutations[distinct[i].Source];
            var index = tensor(p.Select(r => (long)Math.Max(r, 0)).ToArray(), ScalarType.Int64);
            gathered[i] = distinct[i].Rows.index_select(0, index);
            var keep = p.Select((r, t) => r >= 0 && !force[t]).ToArray();
            present[i] = tensor(keep).unsqueeze(1);
            defaults.add_(gathered[i] * tensor(weights[i]).to(dtype).unsqueeze(1));
        }
        defaults.div_(tensor(divisor).to(dtype).unsqueeze(1));
        foreach (var (t, i, row) in fromRow) defaults[t] = distinct[i].Rows[row];

        var result = new Dictionary<IMergeSource, Tensor>();
        for (int i = 0; i < distinct.Count; i++)
        {
            var rows = where(present[i], gathered[i], defaults);
            if (plan.Rows > n)
                rows = cat([rows, rows.mean([0], keepdim: true).expand(plan.Rows - n, hidden)], 0);
            result[distinct[i].Source] = rows;
        }
        return inputs.Select(x => result[x.Source]).ToList();
    }
}
