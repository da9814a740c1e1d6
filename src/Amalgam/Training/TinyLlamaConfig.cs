using System.Text.Json;
using Amalgam.Models;
using Amalgam.Tokenizers;

namespace Amalgam.Training;

/// <summary>
/// The config of a small Llama-architecture model trained from scratch: SiLU, RMSNorm (eps 1e-5), RoPE θ = 10000,
/// grouped-query attention, tied embeddings, 256 positions, special ids from the tokenizer.
/// </summary>
public static class TinyLlamaConfig
{
    public static DecoderConfig Create(ITextTokenizer tokenizer, int hidden, int layers, int heads, int kvHeads, int intermediate)
    {
        var config = JsonSerializer.Deserialize<DecoderConfig>($$"""
            {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": {{tokenizer.VocabSize}},
             "hidden_size": {{hidden}}, "intermediate_size": {{intermediate}}, "num_hidden_layers": {{layers}},
             "num_attention_heads": {{heads}}, "num_key_value_heads": {{kvHeads}}, "hidden_act": "silu",
             "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": true,
             "bos_token_id": {{tokenizer.BosId}}, "eos_token_id": {{tokenizer.EosId}}, "pad_token_id": {{tokenizer.PadId}}}
            """)!;
        config.Validate();
        return config;
    }
}
