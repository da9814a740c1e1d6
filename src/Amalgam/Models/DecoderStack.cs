using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Amalgam.Models;

/// <summary>The checkpoint's <c>model.*</c> part: embeddings, the layers and the final norm.</summary>
public sealed class DecoderStack : nn.Module<Tensor, ForwardContext, Tensor>
{
    private readonly TokenEmbedding embed_tokens;
    /// <summary>GPT-2's learned absolute positions (its wpe), added to the token embeddings.</summary>
    private readonly TokenEmbedding? embed_positions;
    private readonly ModuleList<DecoderLayer> layers;
    private readonly nn.Module<Tensor, Tensor> norm;
    private readonly double? embeddingScale;

    public DecoderStack(string name, DecoderConfig c, ScalarType dtype) : base(name)
    {
        embed_tokens = new TokenEmbedding(nameof(embed_tokens), c.VocabSize, c.HiddenSize, dtype);
        if (c.LearnedPositions) embed_positions = new TokenEmbedding(nameof(embed_positions), c.MaxPositionEmbeddings, c.HiddenSize, dtype);
        layers = new ModuleList<DecoderLayer>(Enumerable.Range(0, c.NumHiddenLayers).Select(i => new DecoderLayer(i.ToString(), c, i, dtype)).ToArray());
        norm = LayerNorm.For(nameof(norm), c, c.HiddenSize, dtype);
        embeddingScale = c.EmbeddingScale;
        RegisterComponents();
    }

    public TokenEmbedding Embeddings => embed_tokens;

    /// <summary>Hidden states after the final norm, [batch, new, hidden]; with <see cref="ForwardContext.Layers"/> = k, the residual stream after layer k, unnormed.</summary>
    public override Tensor forward(Tensor ids, ForwardContext ctx)
    {
        using var scope = NewDisposeScope();
        var x = embed_tokens.call(ids);
        // Gemma: the normaliser √hidden is a tensor of the model dtype, so it is rounded to it first.
        if (embeddingScale is double s) x = x * tensor(s, x.dtype, x.device);
        if (embed_positions is not null) x = Scalars.Plus(x, embed_positions.call(ctx.Positions!));
        int run = ctx.Layers ?? layers.Count;
        for (int i = 0; i < run; i++)
        {
            ctx.LayerInputs?.Invoke(i, x);
            x = layers[i].call(x, ctx);
        }
        if (ctx.Layers is not null) return x.MoveToOuterDisposeScope();
        return norm.call(x).MoveToOuterDisposeScope();
    }
}
