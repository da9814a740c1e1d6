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
L_FUSED = ["self_attn.qkv_proj", "self_attn.o_proj", "mlp.gate_up_proj", "mlp.down_proj"]
NEW_MODELS = ["qwen3", "qwen2_window", "mistral_window", "gemma2", "gemma3", "phi3", "llama_rope_llama3",
              "llama_rope_linear", "llama_rope_dynamic", "qwen2_rope_yarn"]


def expected_layout(adapter):
    mods = {}
    model = adapter.split(".")[0]
    if model in NEW_MODELS:  # all-linear, r 4, alpha 8
        layers = 3 if model == "gemma3" else 2
        return {f"model.layers.{i}.{s}": (4, 8 / 4) for i in range(layers) for s in (L_FUSED if model in FUSED else L)}
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
# Per model, written out by hand: each layer's window (None = global) and whether it uses Gemma 3's local rope.
WINDOWS = {"qwen2_window": [None, 4], "mistral_window": [4, 4], "gemma2": [4, None], "gemma3": [4, 4, None]}
LOCAL_ROPE = {"gemma3": [True, True, False]}
FUSED = {"phi3"}


def rope_freqs(cfg, theta, sc, L):
    """Rotation frequencies of the rotary pairs and the cos/sin factor for a forward whose longest position is L."""
    hd = cfg["head_dim"] if "head_dim" in cfg else cfg["hidden_size"] // cfg["num_attention_heads"]
    rd = int(hd * cfg.get("partial_rotary_factor", 1.0))
    j = np.arange(rd // 2)
    base = theta ** (-2.0 * j / rd)
    kind = "default" if sc is None else (sc.get("rope_type") or sc.get("type"))
    if kind == "default":
        return base, 1.0
    if kind == "linear":
        return base / sc["factor"], 1.0
    if kind == "dynamic":
        M, f = cfg["max_position_embeddings"], sc["factor"]
        return (theta * (f * max(L, M) / M - f + 1) ** (rd / (rd - 2))) ** (-2.0 * j / rd), 1.0
    if kind == "llama3":
        f, lo, hi, old = sc["factor"], sc["low_freq_factor"], sc["high_freq_factor"], sc["original_max_position_embeddings"]
        s = np.clip((old * base / (2 * np.pi) - lo) / (hi - lo), 0.0, 1.0)  # 0: long waves (divided), 1: short (kept)
        return base / f * (1 - s) + base * s, 1.0
    if kind == "yarn":
        f, old = sc["factor"], sc["original_max_position_embeddings"]
        dims = [rd * math.log(old / (b * 2 * math.pi)) / (2 * math.log(theta)) for b in (32, 1)]
        lo, hi = max(math.floor(dims[0]), 0), min(math.ceil(dims[1]), rd - 1)
        ramp = np.clip((j - lo) / (hi - lo if hi > lo else 0.001), 0.0, 1.0)  # 0: kept, 1: divided by f
        return base * (1 - ramp) + base / f * ramp, 1.0 + 0.1 * math.log(f)
    if kind == "longrope":
        old = cfg["original_max_position_embeddings"]
        ratio = cfg["max_position_embeddings"] / old
        ext = np.array(sc["long_factor"] if L > old else sc["short_factor"])
        return base / ext, math.sqrt(1 + math.log(ratio) / math.log(old))
    raise ValueError(kind)


def forward(name, cfg, w, ids, rope_len=None):
    """rope_len[p]: the longest position + 1 of the forward that computed position p (what the KV cache keeps)."""
    arch = cfg["architectures"][0]
    gemma = arch.startswith("Gemma")
    H, nh, nkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg["head_dim"] if "head_dim" in cfg else H // nh
    g, eps, n = nh // nkv, cfg["rms_norm_eps"], len(ids)
    layers = cfg["num_hidden_layers"]
    rope_len = rope_len or [n] * n
    windows = WINDOWS.get(name.split("+")[0], [None] * layers)
    local = LOCAL_ROPE.get(name.split("+")[0], [False] * layers)
    scale = 1 / math.sqrt(cfg["query_pre_attn_scalar"] if gemma else hd)
    acap, fcap = cfg.get("attn_logit_softcapping"), cfg.get("final_logit_softcapping")

    def norm(x, wt):
        return x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + eps) * (1 + wt if gemma else wt)

    def lin(name, x):
        y = x @ w[name + ".weight"].T
        return y + w[name + ".bias"] if name + ".bias" in w else y

    def act(a):
        return 0.5 * a * (1 + np.tanh(0.7978845608028654 * (a + 0.044715 * a ** 3))) if gemma else a / (1 + np.exp(-a))

    def rotations(layer):  # [n, half] complex, scaled by the cos/sin factor
        theta, sc = (cfg.get("rope_local_base_freq"), None) if local[layer] else (cfg["rope_theta"], cfg.get("rope_scaling"))
        rows = []
        for p in range(n):
            f, att = rope_freqs(cfg, theta, sc, rope_len[p])
            rows.append(att * np.exp(1j * p * f))
        return np.array(rows)

    def rope(x, rot):  # x [n, hd]; pairs (j, j + half) of the first 2*half dims rotate as complex numbers
        half = rot.shape[1]
        c = (x[:, :half] + 1j * x[:, half:2 * half]) * rot
        return np.concatenate([c.real, c.imag, x[:, 2 * half:]], axis=1)

    x = w["model.embed_tokens.weight"][ids] * (math.sqrt(H) if gemma else 1.0)
    for i in range(layers):
        p = f"model.layers.{i}."
        rot = rotations(i)
        h = norm(x, w[p + "input_layernorm.weight"])
        if arch == "Phi3ForCausalLM":
            qkv = lin(p + "self_attn.qkv_proj", h)
            q, k, v = qkv[:, :nh * hd], qkv[:, nh * hd:(nh + nkv) * hd], qkv[:, (nh + nkv) * hd:]
        else:
            q, k, v = lin(p + "self_attn.q_proj", h), lin(p + "self_attn.k_proj", h), lin(p + "self_attn.v_proj", h)
        heads = []
        for qh in range(nh):
            kh = qh // g
            qq, kk = q[:, qh * hd:(qh + 1) * hd], k[:, kh * hd:(kh + 1) * hd]
            if p + "self_attn.q_norm.weight" in w:
                qq, kk = norm(qq, w[p + "self_attn.q_norm.weight"]), norm(kk, w[p + "self_attn.k_norm.weight"])
            qq, kk = rope(qq, rot), rope(kk, rot)
            vv = v[:, kh * hd:(kh + 1) * hd]
            o = np.zeros((n, hd))
            for t in range(n):
                lo = 0 if windows[i] is None else max(0, t - windows[i] + 1)
                s = kk[lo:t + 1] @ qq[t] * scale
                if acap is not None:
                    s = acap * np.tanh(s / acap)
                e = np.exp(s - s.max())
                o[t] = (e / e.sum()) @ vv[lo:t + 1]
            heads.append(o)
        a = lin(p + "self_attn.o_proj", np.concatenate(heads, axis=1))
        x = x + (norm(a, w[p + "post_attention_layernorm.weight"]) if gemma else a)
        h = norm(x, w[p + ("pre_feedforward_layernorm.weight" if gemma else "post_attention_layernorm.weight")])
        if arch == "Phi3ForCausalLM":
            gu = lin(p + "mlp.gate_up_proj", h)
            m = lin(p + "mlp.down_proj", act(gu[:, :gu.shape[1] // 2]) * gu[:, gu.shape[1] // 2:])
        else:
            m = lin(p + "mlp.down_proj", act(lin(p + "mlp.gate_proj", h)) * lin(p + "mlp.up_proj", h))
        x = x + (norm(m, w[p + "post_feedforward_layernorm.weight"]) if gemma else m)
    x = norm(x, w["model.norm.weight"])
    logits = x @ (w["lm_head.weight"] if "lm_head.weight" in w else w["model.embed_tokens.weight"]).T
    return logits if fcap is None else fcap * np.tanh(logits / fcap)


def greedy_nocache(name, cfg, w, ids, steps):
    """Recomputes everything each step; a generated token's rope length is its own position + 1, the prompt's
    is the prompt length, as a KV cache keeps them (this matters for dynamic and longrope only)."""
    n0 = len(ids)
    ids, out = list(ids), []
    for _ in range(steps):
        rl = [n0] * n0 + [p + 1 for p in range(n0, len(ids))]
        t = int(np.argmax(forward(name, cfg, w, ids, rl)[-1]))
        out.append(t)
        ids.append(t)
    return out


def features_matter(models, goldens):
    """Each new feature changes the golden logits by far more than the 1e-4 tolerance, so a decoder that ignored
    it would fail: the goldens are compared with this forward run with the feature switched off."""
    def gap(model, cfg=None, w=None, seqs=None):
        case = next(c for c in goldens if c["model"] == model and not c["adapter"])
        c0, w0, _ = models[model]
        pairs = list(zip(case["sequences"], case["logits"]))
        pairs = [pr for pr in pairs if seqs is None or len(pr[0]) in seqs]
        return max(np.abs(forward(model, cfg or c0, w or w0, s) - np.array(lg)).max() for s, lg in pairs)

    def without(model, **fields):
        return {**models[model][0], **fields}

    def windowless(model):
        saved = WINDOWS[model]
        WINDOWS[model] = [None] * len(saved)
        try:
            return gap(model)
        finally:
            WINDOWS[model] = saved

    w3 = {k: v for k, v in models["qwen3"][1].items() if "_norm" not in k or "layernorm" in k}
    g3 = dict(models["gemma3"][1])
    nolocal = LOCAL_ROPE["gemma3"]
    LOCAL_ROPE["gemma3"] = [False] * 3
    local_gap = gap("gemma3")
    LOCAL_ROPE["gemma3"] = nolocal
    gaps = {
        "qwen3 q/k norms": gap("qwen3", w=w3),
        "qwen2 sliding window": windowless("qwen2_window"),
        "mistral sliding window": windowless("mistral_window"),
        "gemma2 sliding window": windowless("gemma2"),
        "gemma2 attention soft-cap": gap("gemma2", without("gemma2", attn_logit_softcapping=None)),
        "gemma2 final soft-cap": gap("gemma2", without("gemma2", final_logit_softcapping=None)),
        "gemma2 query_pre_attn_scalar": gap("gemma2", without("gemma2", query_pre_attn_scalar=16)),
        "gemma3 sliding window": windowless("gemma3"),
        "gemma3 local rope base": local_gap,
        "gemma3 global rope scaling": gap("gemma3", without("gemma3", rope_scaling=None)),
        "gemma3 q/k norms": gap("gemma3", w={k: (0 * v if "q_norm" in k or "k_norm" in k else v) for k, v in g3.items()}),
        "phi3 longrope": gap("phi3", without("phi3", rope_scaling=None)),
        "phi3 long factors (>8 positions)": gap("phi3", without("phi3", original_max_position_embeddings=64,
                                                                  max_position_embeddings=256), seqs={9, 14}),
        "llama3 rope": gap("llama_rope_llama3", without("llama_rope_llama3", rope_scaling=None)),
        "linear rope": gap("llama_rope_linear", without("llama_rope_linear", rope_scaling=None)),
        "dynamic rope (>8 positions)": gap("llama_rope_dynamic", without("llama_rope_dynamic", rope_scaling=None), seqs={9, 14}),
        "yarn rope": gap("qwen2_rope_yarn", without("qwen2_rope_yarn", rope_scaling=None)),
    }
    check(gap("llama_rope_dynamic", without("llama_rope_dynamic", rope_scaling=None), seqs={6}) < 1e-5,  # the goldens keep 7 significant digits
          "dynamic rope changed a sequence within max_position_embeddings")
    for what, d in gaps.items():
        print(f"  switching off {what:34s} moves the logits by up to {d:.3f}")
        check(d > 1e-2, f"{what} barely matters ({d})")


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
    models = {m: load_model(m) for m in sorted({c["model"] for c in goldens})}
    check(set(NEW_MODELS) <= set(models), "new models missing")

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
    pw = models["phi3"][1]
    check(pw["model.layers.0.self_attn.qkv_proj.weight"].shape == (64, 32)
          and pw["model.layers.0.mlp.gate_up_proj.weight"].shape == (64, 32), "phi3 fused shapes")
    for m in ("gemma2", "gemma3"):
        check("tie_word_embeddings" not in models[m][0] and "lm_head.weight" not in models[m][1], f"{m}: tied by default")
        check("model.layers.0.pre_feedforward_layernorm.weight" in models[m][1], f"{m}: sandwich norms")
    check(models["qwen3"][1]["model.layers.0.self_attn.q_norm.weight"].shape == (16,), "qwen3 q_norm")
    check(models["phi3"][0]["rope_scaling"]["type"] == "longrope", "phi3 legacy rope key")

    short_seqs = goldens[0]["sequences"]
    check(sorted(len(s) for s in short_seqs) == [4, 7, 11] and all(3 <= t < 64 for s in short_seqs for t in s), "sequences")
    worst = 0.0
    for case in goldens:
        name, seqs = case["name"], case["sequences"]
        new = case["model"] in NEW_MODELS
        check(seqs == short_seqs if not new else sorted(len(s) for s in seqs) == [6, 9, 14], f"{name}: sequences")
        cfg, w, _ = models[case["model"]]
        if case["adapter"]:
            base_w = w
            wz = merged_weights(base_w, case["adapter"], zero_b=True)
            for s in seqs:
                check(np.abs(forward(name, cfg, wz, s) - forward(name, cfg, base_w, s)).max() < 1e-12, f"{name}: B=0 != base")
            w = merged_weights(base_w, case["adapter"])
        for s, lg, gr in zip(seqs, case["logits"], case["greedy"]):
            ref = forward(name, cfg, w, s)
            lg = np.array(lg)
            check(lg.shape == (len(s), 64), f"{name}: logits shape")
            err = np.abs(ref - lg) / np.maximum(1.0, np.abs(ref))
            worst = max(worst, err.max())
            check(err.max() < 1e-6, f"{name}: logits mismatch {err.max():.2e}")
            g2 = greedy_nocache(name, cfg, w, s, 6)
            check(g2 == gr, f"{name}: greedy {g2} != {gr}")
        if case["adapter"]:
            d = max(np.abs(np.array(a) - np.array(b)).max() for a, b in
                    zip(case["logits"], next(c for c in goldens if c["model"] == case["model"] and not c["adapter"])["logits"]))
            check(d > 0.1, f"{name}: adapter barely changes logits ({d})")
        print(f"ok {name}")
    print(f"max relative logit error vs independent forward: {worst:.2e}")
    features_matter(models, goldens)

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
