using Amalgam.Tensors;
using static TorchSharp.torch;

namespace Amalgam.Models;

/// <summary>
/// GPT-2's checkpoint names onto the decoder's modules: <c>wte</c> → embed_tokens, <c>wpe</c> → embed_positions,
/// <c>h.N.ln_1</c>/<c>ln_2</c> → input_/post_attention_layernorm, the fused <c>attn.c_attn</c> split into q, k and v
/// (in that order, n_embd columns each), <c>attn.c_proj</c> → o_proj, <c>mlp.c_fc</c> → up_proj,
/// <c>mlp.c_proj</c> → down_proj, <c>ln_f</c> → norm. GPT-2's Conv1D stores weights [in, out], so each is
/// transposed into the linear layer's [out, in]. Names may carry transformers' <c>transformer.</c> prefix or not
/// (the original gpt2 checkpoint).
/// </summary>
public static class Gpt2Checkpoint
{
    /// <summary>The prefix of the checkpoint's names: <c>transformer.</c> or none.</summary>
    public static string Prefix(TensorStore store) => store.Contains("transformer.wte.weight") ? "transformer." : "";

    /// <summary>Buffers old GPT-2 checkpoints carry (the causal mask), which transformers ignores on load.</summary>
    public static bool Ignorable(string key) => key.EndsWith(".attn.bias", StringComparison.Ordinal) && !key.Contains(".c_attn.", StringComparison.Ordinal)
        || key.EndsWith(".attn.masked_bias", StringComparison.Ordinal);

    /// <summary>For every decoder parameter: the checkpoint tensor it comes from and how it is cut or transposed.</summary>
    public static Dictionary<string, (string Key, Func<Tensor, Tensor> Take)> Sources(DecoderConfig c, string prefix)
    {
        long e = c.HiddenSize;
        Func<Tensor, Tensor> same = t => t, transposed = t => t.t();
        var map = new Dictionary<string, (string, Func<Tensor, Tensor>)>(StringComparer.Ordinal)
        {
            ["model.embed_tokens.weight"] = (prefix + "wte.weight", same),
            ["model.embed_positions.weight"] = (prefix + "wpe.weight", same),
            ["model.norm.weight"] = (prefix + "ln_f.weight", same),
            ["model.norm.bias"] = (prefix + "ln_f.bias", same),
        };
        for (int i = 0; i < c.NumHiddenLayers; i++)
        {
            string h = $"{prefix}h.{i}.", m = $"model.layers.{i}.";
            foreach (var (from, to) in new[] { ("ln_1", "input_layernorm"), ("ln_2", "post_attention_layernorm") })
                foreach (var p in new[] { "weight", "bias" }) map[$"{m}{to}.{p}"] = ($"{h}{from}.{p}", same);
            string[] qkv = ["q_proj", "k_proj", "v_proj"];
            for (int j = 0; j < 3; j++)
            {
                long start = j * e;
                map[$"{m}self_attn.{qkv[j]}.weight"] = (h + "attn.c_attn.weight", t => t.narrow(1, start, e).t());
                map[$"{m}self_attn.{qkv[j]}.bias"] = (h + "attn.c_attn.bias", t => t.narrow(0, start, e));
            }
            foreach (var (from, to) in new[] { ("attn.c_proj", "self_attn.o_proj"), ("mlp.c_fc", "mlp.up_proj"), ("mlp.c_proj", "mlp.down_proj") })
            {
                map[$"{m}{to}.weight"] = ($"{h}{from}.weight", transposed);
                map[$"{m}{to}.bias"] = ($"{h}{from}.bias", same);
            }
        }
        return map;
    }
}
