#!/usr/bin/env python3
"""Self-check of tests/Golden/data (run after generate.py):  /usr/bin/python3 tests/Golden/check.py

Deliberately does NOT reuse generate.py's code paths: its own safetensors reader (numpy memory
views), a second forward pass (per-head loops, RoPE written as complex rotation of (i, i+d/2)
pairs, LoRA merged into the weights W' = W + scale * B @ A with hand-written expected r/alpha),
a KV-free greedy loop (full recomputation each step), and a second tokenizer implementation.
"""
import json
import math
import os
import sys

import numpy as np

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg)


# ---------------- safetensors reader ----------------
def read_st(path):
    raw = np.fromfile(path, dtype=np.uint8)
    n = int(raw[:8].view("<u8")[0])
    check((8 + n) % 8 == 0, f"{path}: header not 8-aligned")
    hdr = json.loads(bytes(raw[8:8 + n]).decode("utf-8"))
    check(hdr.get("__metadata__") == {"format": "pt"}, f"{path}: metadata")
    body = raw[8 + n:]
    out, dt, spans = {}, {}, []
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        spans.append((b, e))
        seg = body[b:e]
        if v["dtype"] == "F32":
            a = seg.view("<f4").astype(np.float64)
        else:
            check(v["dtype"] == "BF16", f"{path}: dtype {v['dtype']}")
            a = (seg.view("<u2").astype(np.uint32) << 16).view("<f4").astype(np.float64)
        check(a.size == int(np.prod(v["shape"])), f"{path}:{k} size")
        out[k] = a.reshape(v["shape"])
        dt[k] = v["dtype"]
    spans.sort()
    check(spans[0][0] == 0 and spans[-1][1] == len(body) and
          all(spans[i][1] == spans[i + 1][0] for i in range(len(spans) - 1)), f"{path}: data not contiguous")
    return out, dt, len(body)


def load_model(name):
    d = os.path.join(DATA, name)
    cfg = json.load(open(os.path.join(d, "config.json")))
    if os.path.exists(os.path.join(d, "model.safetensors")):
        w, dt, _ = read_st(os.path.join(d, "model.safetensors"))
        return cfg, w, dt
    idx = json.load(open(os.path.join(d, "model.safetensors.index.json")))
    w, dt, total = {}, {}, 0
    for f in sorted(set(idx["weight_map"].values())):
        a, b, n = read_st(os.path.join(d, f))
        total += n
        for k in a:
            check(idx["weight_map"][k] == f, f"{name}: weight_map {k}")
        w.update(a)
        dt.update(b)
    check(total == idx["metadata"]["total_size"], f"{name}: total_size")
    check(set(w) == set(idx["weight_map"]), f"{name}: weight_map keys")
    return cfg, w, dt


# ---------------- expected LoRA layouts (hand written) ----------------
L = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
     "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]


def expected_layout(adapter):
    mods = {}
    for i in range(2):
        for s in L:
            m = f"model.layers.{i}.{s}"
            short = s.split(".")[1]
            if adapter == "llama_gqa.lora_qv" and short in ("q_proj", "v_proj"):
                mods[m] = (4, 8 / 4)
            elif adapter == "llama_gqa.lora_all":
                if short == "down_proj":
                    mods[m] = (2, 16 / 2)
                elif i == 1 and short == "o_proj":
                    mods[m] = (8, 4 / 8)
                else:
                    mods[m] = (8, 16 / 8)
            elif adapter == "llama_gqa.lora_rslora" and short in ("q_proj", "k_proj", "up_proj"):
                mods[m] = (4, 8 / math.sqrt(4))
            elif adapter == "qwen2_tied.lora_all":
                mods[m] = (4, 4 / 4)
    return mods


def merged_weights(w, adapter, zero_b=False):
    d = os.path.join(DATA, adapter)
    acfg = json.load(open(os.path.join(d, "adapter_config.json")))
    check(acfg["peft_type"] == "LORA" and acfg["task_type"] == "CAUSAL_LM", f"{adapter}: config")
    aw, dt, _ = read_st(os.path.join(d, "adapter_model.safetensors"))
    check(set(dt.values()) == {"F32"}, f"{adapter}: dtype")
    lay = expected_layout(adapter)
    keys = set()
    w = dict(w)
    for m, (r, scale) in lay.items():
        ka, kb = f"base_model.model.{m}.lora_A.weight", f"base_model.model.{m}.lora_B.weight"
        keys |= {ka, kb}
        A, B = aw[ka], aw[kb]
        W = w[m + ".weight"]
        check(A.shape == (r, W.shape[1]) and B.shape == (W.shape[0], r), f"{adapter}:{m} shapes")
        check(np.abs(B).min() > 0, f"{adapter}:{m} B has zeros")
        if zero_b:
            B = np.zeros_like(B)
        w[m + ".weight"] = W + scale * (B @ A)
    check(keys == set(aw), f"{adapter}: key set {sorted(set(aw) ^ keys)[:4]}")
    return w


# ---------------- independent forward ----------------
def forward(cfg, w, ids):
    H, nh, nkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg["head_dim"] if "head_dim" in cfg else H // nh
    g, eps, n, half = nh // nkv, cfg["rms_norm_eps"], len(ids), hd // 2

    def norm(x, wt):
        return x / np.sqrt((x * x).mean(axis=1, keepdims=True) + eps) * wt

    def lin(name, x):
        y = x @ w[name + ".weight"].T
        return y + w[name + ".bias"] if name + ".bias" in w else y

    freq = cfg["rope_theta"] ** (-(2.0 * np.arange(half)) / hd)
    rot = np.exp(1j * np.outer(np.arange(n), freq))  # [n, half]

    def rope(x):  # x [n, hd]; pairs (j, j+half) rotate as a complex number
        c = (x[:, :half] + 1j * x[:, half:]) * rot
        return np.concatenate([c.real, c.imag], axis=1)

    x = w["model.embed_tokens.weight"][ids]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = norm(x, w[p + "input_layernorm.weight"])
        q, k, v = lin(p + "self_attn.q_proj", h), lin(p + "self_attn.k_proj", h), lin(p + "self_attn.v_proj", h)
        heads = []
        for qh in range(nh):
            kh = qh // g
            qq = rope(q[:, qh * hd:(qh + 1) * hd])
            kk = rope(k[:, kh * hd:(kh + 1) * hd])
            vv = v[:, kh * hd:(kh + 1) * hd]
            o = np.zeros((n, hd))
            for t in range(n):
                s = kk[:t + 1] @ qq[t] / math.sqrt(hd)
                e = np.exp(s - s.max())
                o[t] = (e / e.sum()) @ vv[:t + 1]
            heads.append(o)
        x = x + lin(p + "self_attn.o_proj", np.concatenate(heads, axis=1))
        h = norm(x, w[p + "post_attention_layernorm.weight"])
        a = lin(p + "mlp.gate_proj", h)
        x = x + lin(p + "mlp.down_proj", a / (1 + np.exp(-a)) * lin(p + "mlp.up_proj", h))
    x = norm(x, w["model.norm.weight"])
    return x @ (w["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else w["lm_head.weight"]).T


def greedy_nocache(cfg, w, ids, steps):
    ids, out = list(ids), []
    for _ in range(steps):
        t = int(np.argmax(forward(cfg, w, ids)[-1]))
        out.append(t)
        ids.append(t)
    return out


# ---------------- tokenizer (second implementation: candidates sorted by length) ----------------
def encode2(text, tokens):
    cands = sorted([t for t in tokens[4:]], key=len, reverse=True)
    ids, i = [], 0
    while i < len(text):
        t = next((c for c in cands if text.startswith(c, i)), None)
        if t is None:
            ids.append(3)
            i += 1
        else:
            ids.append(tokens.index(t))
            i += len(t)
    return ids


def main():
    goldens = json.load(open(os.path.join(DATA, "goldens.json")))
    models = {m: load_model(m) for m in ("llama_gqa", "llama_gqa_sharded", "llama_bf16", "qwen2_tied", "mistral")}

    # file-level expectations
    c, w, dt = models["llama_gqa_sharded"]
    c0, w0, _ = models["llama_gqa"]
    check(c == c0 and set(w) == set(w0) and all(np.array_equal(w[k], w0[k]) for k in w), "sharded != llama_gqa")
    check(set(models["llama_bf16"][2].values()) == {"BF16"}, "bf16 dtype")
    check(models["llama_bf16"][0]["torch_dtype"] == "bfloat16", "bf16 config")
    check("lm_head.weight" not in models["qwen2_tied"][1], "qwen2 tied has lm_head")
    check("model.layers.0.self_attn.o_proj.bias" not in models["qwen2_tied"][1]
          and "model.layers.0.self_attn.q_proj.bias" in models["qwen2_tied"][1], "qwen2 biases")
    check(models["mistral"][1]["model.layers.0.self_attn.q_proj.weight"].shape == (64, 32)
          and models["mistral"][1]["model.layers.0.self_attn.o_proj.weight"].shape == (32, 64), "mistral head_dim")

    seqs = goldens[0]["sequences"]
    check(sorted(len(s) for s in seqs) == [4, 7, 11] and all(3 <= t < 64 for s in seqs for t in s), "sequences")
    worst = 0.0
    for case in goldens:
        check(case["sequences"] == seqs, f"{case['name']}: sequences differ")
        cfg, w, _ = models[case["model"]]
        if case["adapter"]:
            base_w = w
            wz = merged_weights(base_w, case["adapter"], zero_b=True)
            for s in seqs:
                check(np.abs(forward(cfg, wz, s) - forward(cfg, base_w, s)).max() < 1e-12, f"{case['name']}: B=0 != base")
            w = merged_weights(base_w, case["adapter"])
        for s, lg, gr in zip(seqs, case["logits"], case["greedy"]):
            ref = forward(cfg, w, s)
            lg = np.array(lg)
            check(lg.shape == (len(s), 64), f"{case['name']}: logits shape")
            err = np.abs(ref - lg) / np.maximum(1.0, np.abs(ref))
            worst = max(worst, err.max())
            check(err.max() < 1e-6, f"{case['name']}: logits mismatch {err.max():.2e}")
            g2 = greedy_nocache(cfg, w, s, 6)
            check(g2 == gr, f"{case['name']}: greedy {g2} != {gr}")
        if case["adapter"]:
            d = max(np.abs(np.array(a) - np.array(b)).max() for a, b in
                    zip(case["logits"], next(c for c in goldens if c["model"] == case["model"] and not c["adapter"])["logits"]))
            check(d > 0.1, f"{case['name']}: adapter barely changes logits ({d})")
        print(f"ok {case['name']}")
    print(f"max relative logit error vs independent forward: {worst:.2e}")

    tok = json.load(open(os.path.join(DATA, "llama_gqa", "tokenizer.amalgam.json")))
    check(tok == json.load(open(os.path.join(DATA, "qwen2_tied", "tokenizer.amalgam.json"))), "tokenizer copies differ")
    toks = tok["tokens"]
    check(len(toks) == 64 and len(set(toks)) == 64 and toks[:4] == ["<pad>", "<s>", "</s>", "<unk>"], "tokens")
    for tc in json.load(open(os.path.join(DATA, "tokenizer_goldens.json"))):
        check(encode2(tc["text"], toks) == tc["ids"], f"tokenizer {tc['text']!r}")
    print("tokenizer ok")

    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(DATA) for f in fs)
    print(f"total size of data/: {total} bytes")
    check(total < 3_000_000, "data too large")
    if failures:
        print(f"{len(failures)} FAILURES")
        sys.exit(1)
    print("ALL CHECKS PASSED")


if __name__ == "__main__":
    main()
