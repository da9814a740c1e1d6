#!/usr/bin/python3
"""A tiny random GPT2LMHeadModel and its logits, from a plain-PyTorch float64 forward written from GPT-2's published
architecture (Radford et al. 2019, as transformers' GPT2LMHeadModel computes it), without transformers or safetensors.

    /usr/bin/python3 tests/Golden/gpt2/generate.py     # writes tests/Golden/gpt2/model/ and cases.json (seeded)

GPT-2: learned absolute positions (wpe) added to the token embeddings (wte); per block x + attn(ln_1(x)), then
+ mlp(ln_2(.)); LayerNorm with bias (eps layer_norm_epsilon); Conv1D weights stored [in, out] (y = x W + b); one fused
c_attn giving q, k, v (in that order, each n_embd wide), heads of n_embd / n_head, scores / sqrt(head_dim), causal;
mlp c_fc (4 n_embd) -> gelu_new -> c_proj; ln_f; lm_head tied to wte (not stored).
"""
import json
import math
import os
import struct

import torch

F64 = torch.float64
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "model")
CFG = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": 64, "n_embd": 32, "n_head": 4, "n_layer": 3,
       "n_positions": 16, "n_inner": None, "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new",
       "bos_token_id": 1, "eos_token_id": 2, "tie_word_embeddings": True, "torch_dtype": "float32"}
N_GREEDY = 6


def write_safetensors(path, tensors):
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors:
        b = t.to(torch.float32).contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def weights(cfg, g):
    e, v, p, inner = cfg["n_embd"], cfg["vocab_size"], cfg["n_positions"], 4 * cfg["n_embd"]
    rn = lambda *s, std=0.2: torch.randn(*s, generator=g, dtype=F64) * std
    W = {"transformer.wte.weight": rn(v, e, std=0.5), "transformer.wpe.weight": rn(p, e, std=0.3),
         "transformer.ln_f.weight": 1 + rn(e, std=0.1), "transformer.ln_f.bias": rn(e, std=0.1)}
    for i in range(cfg["n_layer"]):
        h = f"transformer.h.{i}."
        for ln in ("ln_1", "ln_2"):
            W[h + ln + ".weight"] = 1 + rn(e, std=0.1)
            W[h + ln + ".bias"] = rn(e, std=0.1)
        W[h + "attn.c_attn.weight"] = rn(e, 3 * e)
        W[h + "attn.c_attn.bias"] = rn(3 * e, std=0.1)
        W[h + "attn.c_proj.weight"] = rn(e, e)
        W[h + "attn.c_proj.bias"] = rn(e, std=0.1)
        W[h + "mlp.c_fc.weight"] = rn(e, inner)
        W[h + "mlp.c_fc.bias"] = rn(inner, std=0.1)
        W[h + "mlp.c_proj.weight"] = rn(inner, e)
        W[h + "mlp.c_proj.bias"] = rn(e, std=0.1)
    # stored in float32: the reference computes from the stored values
    return {k: t.to(torch.float32).to(F64) for k, t in W.items()}


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def forward(cfg, W, ids):
    e, nh, eps = cfg["n_embd"], cfg["n_head"], cfg["layer_norm_epsilon"]
    d = e // nh
    t = len(ids)
    x = W["transformer.wte.weight"][ids] + W["transformer.wpe.weight"][torch.arange(t)]
    causal = torch.tril(torch.ones(t, t, dtype=torch.bool))
    for i in range(cfg["n_layer"]):
        h = f"transformer.h.{i}."
        a = layer_norm(x, W[h + "ln_1.weight"], W[h + "ln_1.bias"], eps)
        qkv = a @ W[h + "attn.c_attn.weight"] + W[h + "attn.c_attn.bias"]
        q, k, v = qkv[:, :e], qkv[:, e:2 * e], qkv[:, 2 * e:]
        q, k, v = (z.reshape(t, nh, d).transpose(0, 1) for z in (q, k, v))
        s = q @ k.transpose(1, 2) / math.sqrt(d)
        s = s.masked_fill(~causal, float("-inf"))
        ctx = (torch.softmax(s, -1) @ v).transpose(0, 1).reshape(t, e)
        x = x + ctx @ W[h + "attn.c_proj.weight"] + W[h + "attn.c_proj.bias"]
        m = layer_norm(x, W[h + "ln_2.weight"], W[h + "ln_2.bias"], eps)
        x = x + gelu_new(m @ W[h + "mlp.c_fc.weight"] + W[h + "mlp.c_fc.bias"]) @ W[h + "mlp.c_proj.weight"] + W[h + "mlp.c_proj.bias"]
    x = layer_norm(x, W["transformer.ln_f.weight"], W["transformer.ln_f.bias"], eps)
    return x @ W["transformer.wte.weight"].T


def greedy(cfg, W, ids):
    ids, out, margin = list(ids), [], float("inf")
    for _ in range(N_GREEDY):
        last = forward(cfg, W, ids)[-1]
        top = torch.topk(last, 2).values
        margin = min(margin, (top[0] - top[1]).item())
        nxt = int(torch.argmax(last))
        out.append(nxt)
        ids.append(nxt)
    return out, margin


def main():
    g = torch.Generator().manual_seed(20261202)
    W = weights(CFG, g)
    os.makedirs(OUT, exist_ok=True)
    write_safetensors(os.path.join(OUT, "model.safetensors"), sorted(W.items()))
    with open(os.path.join(OUT, "config.json"), "w") as f:
        json.dump(CFG, f, indent=2)
    sequences = [[int(i) for i in torch.randint(3, 64, (n,), generator=g)] for n in (5, 9)]
    cases = []
    for s in sequences:
        logits = forward(CFG, W, s)
        toks, margin = greedy(CFG, W, s)
        cases.append({"ids": s, "logits": [[float(f"{v:.7g}") for v in row] for row in logits.tolist()], "greedy": toks, "greedy_min_margin": margin})
    with open(os.path.join(HERE, "cases.json"), "w") as f:
        json.dump({"generator": "tests/Golden/gpt2/generate.py", "torch": torch.__version__, "model": "gpt2", "cases": cases}, f, separators=(",", ":"))
    print("wrote", OUT, "and cases.json; greedy margins", [round(c["greedy_min_margin"], 3) for c in cases])


if __name__ == "__main__":
    main()
