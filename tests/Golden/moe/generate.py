"""Goldens for Mixtral-style sparse MoE: the decoder block and mergekit-moe's gate construction.

Writes into this folder (deterministic, fixed seeds):
  mixtral/, mixtral_top1/      tiny MixtralForCausalLM checkpoints (+ tokenizer.amalgam.json)
  experts/{a,b,c}/             Llama experts over ../data/llama_gqa (MLP and attention redrawn)
  cases.json                   logits of the two Mixtral checkpoints; gate vectors of mergekit-moe's
                               gate modes hidden (= hidden_last), hidden_avg and cheap_embed for the
                               prompts below; logits of the MoE mergekit-moe builds from them (hidden)

Plain PyTorch in float64, written from transformers' MixtralForCausalLM (MixtralSparseMoeBlock) and from
mergekit/moe/router.py; it uses neither transformers nor mergekit. Only the safetensors reader/writer and
the test tokenizer's encoder come from ../generate.py. Run: /usr/bin/python3 tests/Golden/moe/generate.py
"""
import json
import os
import shutil
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from generate import write_safetensors, load_model_dir, make_tokens, encode  # noqa: E402

DATA = os.path.join(os.path.dirname(HERE), "data")
torch.set_default_dtype(torch.float64)

SEQUENCES = [[1, 5, 9, 33, 12, 40, 7], [1, 20, 21], [1, 60, 3, 3, 44, 18, 27, 50, 11, 8, 31, 6]]
EXPERTS = [
    {"name": "a", "positive": ["the cat sat on the mat.", "a thing in the end"], "negative": ["reading and writing"]},
    {"name": "b", "positive": ["1, 2, 3 and 42?"], "negative": []},
    {"name": "c", "positive": ["hello, world!", "on and on"], "negative": ["the end"]},
]


# ------------------------------------------------------------------------------------------------
# the decoder (Llama attention; Llama MLP or Mixtral's sparse MoE block)
# ------------------------------------------------------------------------------------------------

def rms(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x, pos, theta):
    hd = x.shape[-1]
    inv = 1.0 / theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    f = pos[:, None].double() * inv[None, :]
    emb = torch.cat((f, f), -1)
    h = hd // 2
    rot = torch.cat((-x[..., h:], x[..., :h]), -1)
    return x * emb.cos() + rot * emb.sin()


def swiglu(x, w_gate, w_up, w_down):
    return (torch.nn.functional.silu(x @ w_gate.T) * (x @ w_up.T)) @ w_down.T


def sparse_moe(cfg, W, p, x, stats):
    """MixtralSparseMoeBlock: softmax over experts, top-k, renormalised weights, weighted sum of SwiGLU experts."""
    E, k = cfg["num_local_experts"], cfg["num_experts_per_tok"]
    probs = torch.softmax(x @ W[p + "block_sparse_moe.gate.weight"].T, dim=-1)
    srt = probs.sort(dim=-1, descending=True).values
    if k < E:
        stats.append((srt[:, k - 1] - srt[:, k]).min().item())
    top, idx = probs.topk(k, dim=-1)
    top = top / top.sum(-1, keepdim=True)
    out = torch.zeros_like(x)
    for r in range(x.shape[0]):
        for j in range(k):
            e = idx[r, j].item()
            q = p + f"block_sparse_moe.experts.{e}."
            out[r] += top[r, j] * swiglu(x[r], W[q + "w1.weight"], W[q + "w3.weight"], W[q + "w2.weight"])
    return out


def forward(cfg, W, ids, layer_inputs=None, stats=None):
    """Logits [n, vocab] of one unpadded sequence; layer_inputs (a list) receives each layer's input."""
    H, nh, nkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or H // nh
    moe = cfg["architectures"][0] == "MixtralForCausalLM"
    eps = cfg.get("rms_norm_eps", 1e-5 if moe else 1e-6)
    theta = cfg.get("rope_theta", 1e6 if moe else 1e4)
    n = len(ids)
    pos = torch.arange(n)
    x = W["model.embed_tokens.weight"][torch.tensor(ids)]
    for i in range(cfg["num_hidden_layers"]):
        if layer_inputs is not None:
            layer_inputs.append(x.clone())
        p = f"model.layers.{i}."
        h = rms(x, W[p + "input_layernorm.weight"], eps)
        q = (h @ W[p + "self_attn.q_proj.weight"].T).view(n, nh, hd).transpose(0, 1)
        kk = (h @ W[p + "self_attn.k_proj.weight"].T).view(n, nkv, hd).transpose(0, 1)
        v = (h @ W[p + "self_attn.v_proj.weight"].T).view(n, nkv, hd).transpose(0, 1)
        q, kk = rope(q, pos, theta), rope(kk, pos, theta)
        kk = kk.repeat_interleave(nh // nkv, 0)
        v = v.repeat_interleave(nh // nkv, 0)
        s = (q @ kk.transpose(1, 2)) / hd ** 0.5
        s = s.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))
        a = (torch.softmax(s, -1) @ v).transpose(0, 1).reshape(n, nh * hd)
        x = x + a @ W[p + "self_attn.o_proj.weight"].T
        h = rms(x, W[p + "post_attention_layernorm.weight"], eps)
        if moe:
            x = x + sparse_moe(cfg, W, p, h, stats if stats is not None else [])
        else:
            x = x + swiglu(h, W[p + "mlp.gate_proj.weight"], W[p + "mlp.up_proj.weight"], W[p + "mlp.down_proj.weight"])
    x = rms(x, W["model.norm.weight"], eps)
    head = W["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else W["lm_head.weight"]
    return x @ head.T


# ------------------------------------------------------------------------------------------------
# tiny Mixtral checkpoints
# ------------------------------------------------------------------------------------------------

def mixtral_config(experts, top_k, defaults=False):
    cfg = {
        "architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "vocab_size": 64, "hidden_size": 32,
        "intermediate_size": 24, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "hidden_act": "silu", "max_position_embeddings": 128, "rms_norm_eps": 1e-5, "rope_theta": 1e6,
        "sliding_window": None, "tie_word_embeddings": False, "num_local_experts": experts,
        "num_experts_per_tok": top_k, "router_aux_loss_coef": 0.001, "output_router_logits": False,
        "router_jitter_noise": 0.0, "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32",
    }
    if defaults:  # absent fields take MixtralConfig's defaults (eps 1e-5, theta 1e6)
        del cfg["rms_norm_eps"], cfg["rope_theta"]
    return cfg


def mixtral_weights(cfg, seed):
    g = torch.Generator().manual_seed(seed)

    def rn(*shape, std=0.2):
        return torch.randn(*shape, generator=g) * std

    H, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    hd = H // cfg["num_attention_heads"]
    W = [("model.embed_tokens.weight", rn(V, H, std=1.0))]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        W += [(p + "input_layernorm.weight", 1 + rn(H, std=0.1)),
              (p + "self_attn.q_proj.weight", rn(cfg["num_attention_heads"] * hd, H)),
              (p + "self_attn.k_proj.weight", rn(cfg["num_key_value_heads"] * hd, H)),
              (p + "self_attn.v_proj.weight", rn(cfg["num_key_value_heads"] * hd, H)),
              (p + "self_attn.o_proj.weight", rn(H, cfg["num_attention_heads"] * hd)),
              (p + "post_attention_layernorm.weight", 1 + rn(H, std=0.1)),
              (p + "block_sparse_moe.gate.weight", rn(cfg["num_local_experts"], H, std=0.5))]
        for e in range(cfg["num_local_experts"]):
            q = p + f"block_sparse_moe.experts.{e}."
            W += [(q + "w1.weight", rn(I, H)), (q + "w2.weight", rn(H, I)), (q + "w3.weight", rn(I, H))]
    W += [("model.norm.weight", 1 + rn(H, std=0.1)), ("lm_head.weight", rn(V, H))]
    return W


def write_model(folder, cfg, tensors):
    d = os.path.join(HERE, folder)
    if os.path.exists(d):
        shutil.rmtree(d)
    os.makedirs(d)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    write_safetensors(os.path.join(d, "model.safetensors"), tensors, "F32")
    return d


def as_f32(tensors):
    """What the C# side reads back: the float32-rounded values."""
    return {k: v.to(torch.float32).to(torch.float64) for k, v in tensors}


def logits_case(name, cfg, W):
    stats = []
    logits = [forward(cfg, W, s, stats=stats) for s in SEQUENCES]
    return {"name": name, "model": name, "sequences": SEQUENCES, "min_topk_margin": min(stats) if stats else None,
            "logits": [[[float(f"{v:.9g}") for v in row] for row in l.tolist()] for l in logits]}


# ------------------------------------------------------------------------------------------------
# mergekit-moe's gates (mergekit/moe/router.py), prompts tokenized as bos + prompt, each prompt alone
# ------------------------------------------------------------------------------------------------

def prompt_ids(prompt, toks):
    return [1] + encode(prompt, toks)


def hidden_vectors(cfg, W, prompts, toks, average):
    """Per layer, the mean over prompts of the layer input at the last position (or averaged over positions)."""
    total = None
    for p in prompts:
        ins = []
        forward(cfg, W, prompt_ids(p, toks), layer_inputs=ins)
        v = torch.stack([x.mean(0) if average else x[-1] for x in ins])  # [layers, hidden]
        total = v if total is None else total + v
    return total / len(prompts)


def cheap_vectors(cfg, W, prompts, toks):
    emb = W["model.embed_tokens.weight"]
    s = sum(emb[t] for p in prompts for t in prompt_ids(p, toks))
    s = s / s.norm().clamp(min=1e-8)
    return s.unsqueeze(0).repeat(cfg["num_hidden_layers"], 1)


def gates(cfg, W, toks, mode):
    vecs = []
    for e in EXPERTS:
        f = (lambda ps: cheap_vectors(cfg, W, ps, toks)) if mode == "cheap_embed" \
            else (lambda ps: hidden_vectors(cfg, W, ps, toks, average=mode == "hidden_avg"))
        v = f(e["positive"])
        if e["negative"]:
            v = v - f(e["negative"])
        vecs.append(v / v.norm(dim=-1, keepdim=True).clamp(min=1e-8))
    return torch.stack(vecs).permute(1, 0, 2)  # [layers, experts, hidden]


def make_experts(base_cfg, base_w):
    out = {}
    for n, e in enumerate(EXPERTS):
        g = torch.Generator().manual_seed(100 + n)
        W = []
        for k, v in base_w.items():
            if ".mlp." in k or ".self_attn." in k:  # attention is redrawn too: the MoE must take the base's
                v = torch.randn(v.shape, generator=g) * 0.2
            W.append((k, v))
        write_model(os.path.join("experts", e["name"]), base_cfg, W)
        out[e["name"]] = as_f32(W)
    return out


def moe_weights(base_cfg, base_w, experts, gate):
    """What mergekit-moe's Mixtral output writes: the base's tensors, each expert's MLP as experts.E.w1/w2/w3."""
    W = {}
    for k, v in base_w.items():
        if ".mlp." not in k:
            W[k] = v
            continue
        for i, e in enumerate(EXPERTS):
            name = k.replace(".mlp.gate_proj", f".block_sparse_moe.experts.{i}.w1") \
                .replace(".mlp.down_proj", f".block_sparse_moe.experts.{i}.w2") \
                .replace(".mlp.up_proj", f".block_sparse_moe.experts.{i}.w3")
            W[name] = experts[e["name"]][k]
    for i in range(base_cfg["num_hidden_layers"]):
        W[f"model.layers.{i}.block_sparse_moe.gate.weight"] = gate[i].to(torch.float32).to(torch.float64)
    cfg = dict(base_cfg, architectures=["MixtralForCausalLM"], model_type="mixtral", num_local_experts=len(EXPERTS),
               num_experts_per_tok=2, sliding_window=None)
    return cfg, W


def main():
    toks = make_tokens()
    cases = {"mixtral": [], "gates": {}, "moe": None, "experts": EXPERTS}
    for name, cfg, seed in [("mixtral", mixtral_config(4, 2), 21), ("mixtral_top1", mixtral_config(3, 1, defaults=True), 12)]:
        W = mixtral_weights(cfg, seed)
        d = write_model(name, cfg, W)
        shutil.copy(os.path.join(DATA, "llama_gqa", "tokenizer.amalgam.json"), d)
        case = logits_case(name, cfg, as_f32(W))
        if case["min_topk_margin"] is not None:
            assert case["min_topk_margin"] > 1e-4, case["min_topk_margin"]
        cases["mixtral"].append(case)
    base_cfg, base_w = load_model_dir(os.path.join(DATA, "llama_gqa"))
    experts = make_experts(base_cfg, base_w)
    for mode in ["hidden", "hidden_avg", "cheap_embed"]:
        cases["gates"][mode] = gates(base_cfg, base_w, toks, mode).tolist()
    cfg, W = moe_weights(base_cfg, base_w, experts, torch.tensor(cases["gates"]["hidden"]))
    stats = []
    logits = [forward(cfg, W, s, stats=stats) for s in SEQUENCES]
    assert min(stats) > 1e-4, min(stats)
    cases["moe"] = {"gate_mode": "hidden", "experts_per_token": 2, "sequences": SEQUENCES, "min_topk_margin": min(stats),
                    "logits": [[[float(f"{v:.9g}") for v in row] for row in l.tolist()] for l in logits]}
    with open(os.path.join(HERE, "cases.json"), "w") as f:
        json.dump(cases, f)
    for c in cases["mixtral"]:
        print(c["name"], "min top-k margin", c["min_topk_margin"])
    print("moe min top-k margin", cases["moe"]["min_topk_margin"])


if __name__ == "__main__":
    main()
