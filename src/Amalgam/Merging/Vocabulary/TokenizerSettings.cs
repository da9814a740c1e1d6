using System.Globalization;
using System.Text;
using Amalgam.Merging.Recipes;

namespace Amalgam.Merging.Vocabulary;

/// <summary>Where a token's default embedding row comes from (mergekit's <c>tokens.TOKEN.source</c>).</summary>
public abstract record TokenEmbeddingSource;

/// <summary><c>source: MODEL</c>: that model's row for this very token (the model must have it).</summary>
public sealed record ModelRowSource(string Model) : TokenEmbeddingSource;

/// <summary><c>source: {kind: model_token, model: MODEL, token: T}</c> or <c>token_id: N</c>: that model's row of another token.</summary>
public sealed record ModelTokenSource(string Model, string? Token, int? TokenId) : TokenEmbeddingSource;

/// <summary><c>source: {kind: zero}</c>: a zero row.</summary>
public sealed record ZeroSource : TokenEmbeddingSource;

/// <summary>One entry of <c>tokens:</c>; <c>force: true</c> uses the source's row even in models that have the token.</summary>
public sealed record TokenSetting(TokenEmbeddingSource Source, bool Force);

/// <summary>
/// mergekit's tokenizer settings: <c>tokenizer_source: base | union | model:NAME</c>, or the <c>tokenizer:</c> block
/// (<c>source</c>, default union; <c>tokens</c>; <c>pad_to_multiple_of</c>). Either one makes the merge build an
/// output vocabulary and permute every input's embed_tokens / lm_head rows into it before merging.
/// </summary>
public sealed record TokenizerSettings(string Source, IReadOnlyDictionary<string, TokenSetting> Tokens, int? PadToMultipleOf, bool Block)
{
    public bool IsUnion => Source == "union";
    public bool IsBase => Source == "base";
    /// <summary>The model named by <c>model:NAME</c> (or, in the block, by a bare reference), else null.</summary>
    public string? Model => IsUnion || IsBase ? null : Source.StartsWith("model:", StringComparison.Ordinal) ? Source["model:".Length..] : Source;

    public static TokenizerSettings FromSource(string source) => new(source, new Dictionary<string, TokenSetting>(StringComparer.Ordinal), null, false);

    /// <summary>The block as YAML (for merge_recipe.yaml).</summary>
    public string ToYaml()
    {
        if (!Block) return "tokenizer_source: " + YamlText.Scalar(Source) + "\n";
        var y = new StringBuilder("tokenizer:\n");
        y.Append("  source: ").AppendLine(YamlText.Scalar(Source));
        if (PadToMultipleOf is { } p) y.Append("  pad_to_multiple_of: ").AppendLine(p.ToString(CultureInfo.InvariantCulture));
        if (Tokens.Count > 0)
        {
            y.AppendLine("  tokens:");
            foreach (var (token, s) in Tokens)
            {
                y.Append("    ").Append(YamlText.Scalar(token)).AppendLine(":");
                y.Append("      source: ").AppendLine(s.Source switch
                {
                    ModelRowSource m => YamlText.Scalar(m.Model),
                    ModelTokenSource t => "{kind: model_token, model: " + YamlText.Scalar(t.Model) + (t.Token is not null ? ", token: " + YamlText.Scalar(t.Token) : ", token_id: " + t.TokenId!.Value.ToString(CultureInfo.InvariantCulture)) + "}",
                    _ => "{kind: zero}",
                });
                if (s.Force) y.AppendLine("      force: true");
            }
        }
        return y.ToString();
    }
}
