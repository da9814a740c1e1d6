"""Goldens for Qwen2-MoE's sparse block (transformers' Qwen2MoeSparseMoeBlock) in Amalgam's decoder.

Writes into this folder (deterministic, fixed seed):
  qwen2_moe/, qwen2_moe_norm/   tiny Qwen2MoeForCausalLM checkpoints: 3 layers, layer 1 in mlp_only_layers (a dense
                                MLP), 4 routed experts top 2 (moe_intermediate_size 16), a shared expert (width 20)
                                behind its sigmoid gate, q/k/v biases; norm_topk_prob false (Qwen2MoeConfig's
                                default) and true (mergekit-moe's Qwen output)
  qwen2_moe_cases.json          their logits on three sequences (float64 reference)

Plain PyTorch in float64 written from the reference formula: p = softmax(gate·x) over the routed experts, the top
k (renormalised only with norm_topk_prob), Σ wₑ·SwiGLUₑ(x) + σ(shared_expert_gate·x)·SwiGLU_shared(x). It uses
neither transformers nor the C#; rms, rope, swiglu and the safetensors writer come from generate.py / ../generate.py.
Run: /usr/bin/python3 tests/Golden/moe/qwen2_moe.py
"""
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # ../generate.py, which moe/generate.py imports as "generate"
import importlib.util  # noqa: E402
_spec = importlib.util.spec_from_file_location("moe_generate", os.path.join(HERE, "generate.py"))
_moe = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_moe)
rms, rope, swiglu, write_model, as_f32, SEQUENCES = _moe.rms, _moe.rope, _moe.swiglu, _moe.write_model, _moe.as_f32, _moe.SEQUENCES

torch.set_default_dtype(torch.float64)


def config(norm):
    return {
        "architectures": ["Qwen2MoeForCausalLM"], "model_type": "qwen2_moe", "vocab_size": 64, "hidden_size": 32,
        "intermediate_size": 24, "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2,
        "hidden_act": "silu", "max_position_embeddings": 128, "rms_norm_eps": 1e-6, "rope_theta": 1e4,
        "use_sliding_window": False, "sliding_window": None, "tie_word_embeddings": False,
        "num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 16, "shared_expert_intermediate_size": 20,
        "norm_topk_prob": norm, "decoder_sparse_step": 1, "mlp_only_layers": [1],
        "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32",
    }


def sparse(cfg, i):
    return i not in cfg["mlp_only_layers"] and cfg["num_experts"] > 0 and (i + 1) % cfg["decoder_sparse_step"] == 0


def weights(cfg, seed):
    g = torch.Generator().manual_seed(seed)

    def rn(*shape, std=0.2):
        return torch.randn(*shape, generator=g) * std

    H, V, nh, nkv = cfg["hidden_size"], cfg["vocab_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = H // nh
    W = [("model.embed_tokens.weight", rn(V, H, std=1.0))]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        W += [(p + "input_layernorm.weight", 1 + rn(H, std=0.1)),
              (p + "self_attn.q_proj.weight", rn(nh * hd, H)), (p + "self_attn.q_proj.bias", rn(nh * hd)),
              (p + "self_attn.k_proj.weight", rn(nkv * hd, H)), (p + "self_attn.k_proj.bias", rn(nkv * hd)),
              (p + "self_attn.v_proj.weight", rn(nkv * hd, H)), (p + "self_attn.v_proj.bias", rn(nkv * hd)),
              (p + "self_attn.o_proj.weight", rn(H, nh * hd)),
              (p + "post_attention_layernorm.weight", 1 + rn(H, std=0.1))]
        if sparse(cfg, i):
            W += [(p + "mlp.gate.weight", rn(cfg["num_experts"], H, std=0.5)), (p + "mlp.shared_expert_gate.weight", rn(1, H, std=0.5))]
            for e in range(cfg["num_experts"]):
                q = p + f"mlp.experts.{e}."
                I = cfg["moe_intermediate_size"]
                W += [(q + "gate_proj.weight", rn(I, H)), (q + "up_proj.weight", rn(I, H)), (q + "down_proj.weight", rn(H, I))]
            I = cfg["shared_expert_intermediate_size"]
            q = p + "mlp.shared_expert."
            W += [(q + "gate_proj.weight", rn(I, H)), (q + "up_proj.weight", rn(I, H)), (q + "down_proj.weight", rn(H, I))]
        else:
            I = cfg["intermediate_size"]
            W += [(p + "mlp.gate_proj.weight", rn(I, H)), (p + "mlp.up_proj.weight", rn(I, H)), (p + "mlp.down_proj.weight", rn(H, I))]
    W += [("model.norm.weight", 1 + rn(H, std=0.1)), ("lm_head.weight", rn(V, H))]
    return W


def moe_block(cfg, W, p, x, stats):
    E, k = cfg["num_experts"], cfg["num_experts_per_tok"]
    probs = torch.softmax(x @ W[p + "mlp.gate.weight"].T, dim=-1)
    srt = probs.sort(dim=-1, descending=True).values
    stats.append((srt[:, k - 1] - srt[:, k]).min().item())
    top, idx = probs.topk(k, dim=-1)
    if cfg["norm_topk_prob"]:
        top = top / top.sum(-1, keepdim=True)
    out = torch.zeros_like(x)
    for r in range(x.shape[0]):
        for j in range(k):
            q = p + f"mlp.experts.{idx[r, j].item()}."
            out[r] += top[r, j] * swiglu(x[r], W[q + "gate_proj.weight"], W[q + "up_proj.weight"], W[q + "down_proj.weight"])
    q = p + "mlp.shared_expert."
    shared = swiglu(x, W[q + "gate_proj.weight"], W[q + "up_proj.weight"], W[q + "down_proj.weight"])
    return out + torch.sigmoid(x @ W[p + "mlp.shared_expert_gate.weight"].T) * shared


def forward(cfg, W, ids, stats):
    H, nh, nkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd, eps, theta, n = H // nh, cfg["rms_norm_eps"], cfg["rope_theta"], len(ids)
    pos = torch.arange(n)
    x = W["model.embed_tokens.weight"][torch.tensor(ids)]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms(x, W[p + "input_layernorm.weight"], eps)

        def proj(name, heads):
            return (h @ W[p + f"self_attn.{name}.weight"].T + W[p + f"self_attn.{name}.bias"]).view(n, heads, hd).transpose(0, 1)
        q, kk, v = proj("q_proj", nh), proj("k_proj", nkv), proj("v_proj", nkv)
        q, kk = rope(q, pos, theta), rope(kk, pos, theta)
        kk, v = kk.repeat_interleave(nh // nkv, 0), v.repeat_interleave(nh // nkv, 0)
        s = (q @ kk.transpose(1, 2)) / hd ** 0.5
        s = s.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))
        x = x + (torch.softmax(s, -1) @ v).transpose(0, 1).reshape(n, nh * hd) @ W[p + "self_attn.o_proj.weight"].T
        h = rms(x, W[p + "post_attention_layernorm.weight"], eps)
        if sparse(cfg, i):
            x = x + moe_block(cfg, W, p, h, stats)
        else:
            x = x + swiglu(h, W[p + "mlp.gate_proj.weight"], W[p + "mlp.up_proj.weight"], W[p + "mlp.down_proj.weight"])
    return rms(x, W["model.norm.weight"], eps) @ W["lm_head.weight"].T


def main():
    cases = {}
    for name, norm, seed in [("qwen2_moe", False, 21), ("qwen2_moe_norm", True, 22)]:
        cfg = config(norm)
        W = weights(cfg, seed)
        write_model(name, cfg, W)
        Wf = as_f32(W)
        stats = []
        logits = [forward(cfg, Wf, s, stats) for s in SEQUENCES]
        cases[name] = {"sequences": SEQUENCES, "min_topk_margin": min(stats),
                       "logits": [[[float(f"{v:.9g}") for v in row] for row in l.tolist()] for l in logits]}
        print(name, "min top-k margin", min(stats))
    with open(os.path.join(HERE, "qwen2_moe_cases.json"), "w") as f:
        json.dump(cases, f)


if __name__ == "__main__":
    main()
