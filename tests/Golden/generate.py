#!/usr/bin/env python3
"""Golden test-data generator (tiny HF checkpoints, PEFT LoRA adapters, reference logits).

Run from the repository root:  /usr/bin/python3 tests/Golden/generate.py
Needs only torch + numpy. Deterministic (fixed seeds). Everything is written to tests/Golden/data/.

The reference forward pass is an independent float64 re-implementation of Hugging Face
transformers' LlamaForCausalLM / Qwen2ForCausalLM / MistralForCausalLM and PEFT LoRA semantics.
"""
import json
import math
import os
import re
import shutil
import struct

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
N_GREEDY = 6

# --------------------------------------------------------------------------------------------
# safetensors (hand written)
# --------------------------------------------------------------------------------------------


def tensor_bytes(t, dtype):
    """Little-endian raw bytes of tensor t stored as dtype ("F32" or "BF16")."""
    t = t.detach().contiguous()
    if dtype == "F32":
        return t.to(torch.float32).numpy().astype("<f4").tobytes()
    if dtype == "BF16":
        # round-to-nearest-even to bf16, then take the bit pattern
        bits = t.to(torch.float32).to(torch.bfloat16).view(torch.int16).numpy()
        return bits.astype("<i2").tobytes()
    raise ValueError(dtype)


def write_safetensors(path, tensors, dtype):
    """tensors: list of (name, tensor). Written in the given order."""
    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    off = 0
    for name, t in tensors:
        b = tensor_bytes(t, dtype)
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    return off  # bytes of tensor data


def read_safetensors(path):
    """Returns {name: float64 torch tensor}."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        buf = raw[base + b:base + e]
        if info["dtype"] == "F32":
            a = np.frombuffer(buf, dtype="<f4").astype(np.float64)
        elif info["dtype"] == "BF16":
            u16 = np.frombuffer(buf, dtype="<u2").astype(np.uint32)
            a = (u16 << 16).view(np.float32).astype(np.float64)
        else:
            raise ValueError(info["dtype"])
        out[name] = torch.from_numpy(a.reshape(info["shape"]).copy())
    return out


def load_model_dir(d):
    """Loads config + weights (single file or sharded) of a model folder as float64."""
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    single = os.path.join(d, "model.safetensors")
    if os.path.exists(single):
        return cfg, read_safetensors(single)
    with open(os.path.join(d, "model.safetensors.index.json")) as f:
        idx = json.load(f)
    w = {}
    for shard in sorted(set(idx["weight_map"].values())):
        part = read_safetensors(os.path.join(d, shard))
        for k, v in part.items():
            assert idx["weight_map"][k] == shard
            w[k] = v
    assert set(w) == set(idx["weight_map"])
    return cfg, w


# --------------------------------------------------------------------------------------------
# PEFT LoRA semantics
# --------------------------------------------------------------------------------------------

LINEAR_SUFFIXES = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                   "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
PHI3_SUFFIXES = ["self_attn.qkv_proj", "self_attn.o_proj", "mlp.gate_up_proj", "mlp.down_proj"]


def linear_module_names(cfg):
    """All nn.Linear module names of the model except lm_head (the output layer)."""
    sfx = PHI3_SUFFIXES if cfg["architectures"][0] == "Phi3ForCausalLM" else LINEAR_SUFFIXES
    return [f"model.layers.{i}.{s}" for i in range(cfg["num_hidden_layers"]) for s in sfx]


def module_targeted(name, target_modules):
    if target_modules == "all-linear":
        return True  # candidates exclude lm_head already
    if isinstance(target_modules, str):
        return re.fullmatch(target_modules, name) is not None
    return any(name == t or name.endswith("." + t) for t in target_modules)


def pattern_lookup(name, patterns, default):
    for p, v in patterns.items():
        if re.match(rf"(.*\.)?({p})$", name):
            return v
    return default


def lora_layout(cfg, acfg):
    """{module: (r, alpha, scale)} for each targeted module."""
    out = {}
    for m in linear_module_names(cfg):
        if not module_targeted(m, acfg["target_modules"]):
            continue
        r = pattern_lookup(m, acfg.get("rank_pattern") or {}, acfg["r"])
        alpha = pattern_lookup(m, acfg.get("alpha_pattern") or {}, acfg["lora_alpha"])
        scale = alpha / math.sqrt(r) if acfg.get("use_rslora") else alpha / r
        out[m] = (r, alpha, scale)
    return out


def load_adapter_dir(d, cfg):
    """Returns {module: (A [r,in], B [out,r], scale)} in float64."""
    with open(os.path.join(d, "adapter_config.json")) as f:
        acfg = json.load(f)
    w = read_safetensors(os.path.join(d, "adapter_model.safetensors"))
    lay = lora_layout(cfg, acfg)
    out = {}
    for m, (r, alpha, scale) in lay.items():
        A = w[f"base_model.model.{m}.lora_A.weight"]
        B = w[f"base_model.model.{m}.lora_B.weight"]
        assert A.shape[0] == r and B.shape[1] == r
        out[m] = (A, B, scale)
    assert len(w) == 2 * len(lay), "unexpected extra tensors in adapter"
    return out


# --------------------------------------------------------------------------------------------
# float64 reference forward (HF semantics), with an optional KV cache
# --------------------------------------------------------------------------------------------
# Families: Llama, Mistral, Qwen2, Qwen3 (per-head q/k RMSNorm), Gemma 2 and Gemma 3 text ((1 + w) norms,
# sandwich norms, GeGLU with tanh GELU, soft-capping, query_pre_attn_scalar, sliding/global layers, Gemma 3's
# local rope and q/k norms) and Phi-3 (fused qkv_proj and gate_up_proj, partial rotary, longrope).

GEMMA = ("Gemma2ForCausalLM", "Gemma3ForCausalLM")
QWEN = ("Qwen2ForCausalLM", "Qwen3ForCausalLM")


def arch(cfg):
    return cfg["architectures"][0]


def head_dim_of(cfg):
    return cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]


def rotary_dim_of(cfg):
    return int(head_dim_of(cfg) * cfg.get("partial_rotary_factor", 1.0))


def tied(cfg):
    # Gemma's config class defaults to tied embeddings, so save_pretrained leaves the field out.
    return cfg.get("tie_word_embeddings", arch(cfg) in GEMMA)


def layer_windows(cfg):
    """The attention window of each layer (None = global), as transformers derives it."""
    n, a, sw = cfg["num_hidden_layers"], arch(cfg), cfg.get("sliding_window")
    if a in QWEN and not cfg.get("use_sliding_window"):
        sw = None
    types = cfg.get("layer_types")
    if types is None:
        if a == "Gemma2ForCausalLM":
            types = ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(n)]
        elif a == "Gemma3ForCausalLM":
            p = cfg.get("sliding_window_pattern", 6)
            types = ["sliding_attention" if (i + 1) % p else "full_attention" for i in range(n)]
        elif a in QWEN:
            types = ["sliding_attention" if sw is not None and i >= cfg.get("max_window_layers", 28)
                     else "full_attention" for i in range(n)]
        elif a in ("MistralForCausalLM", "Phi3ForCausalLM"):
            types = ["sliding_attention"] * n
        else:
            types = ["full_attention"] * n
    return [sw if t == "sliding_attention" else None for t in types]


def layer_rope(cfg, i):
    """(theta, rope_scaling) of layer i: Gemma 3's sliding layers use their own base and no scaling."""
    if arch(cfg) == "Gemma3ForCausalLM" and layer_windows(cfg)[i] is not None:
        return cfg.get("rope_local_base_freq", 10000.0), None
    return cfg["rope_theta"], cfg.get("rope_scaling")


def inv_freq_of(cfg, theta, scaling, seq_len):
    """transformers' rope init functions in float64: (inv_freq [dim/2], attention factor on cos/sin).
    seq_len = max(position_ids) + 1 of the forward (what dynamic and longrope depend on)."""
    dim = rotary_dim_of(cfg)
    expo = torch.arange(0, dim, 2, dtype=torch.float64) / dim
    base_inv = 1.0 / theta ** expo
    kind = None if scaling is None else scaling.get("rope_type", scaling.get("type"))
    if kind in (None, "default"):
        return base_inv, 1.0
    if kind == "linear":
        return base_inv / scaling["factor"], 1.0
    if kind == "dynamic":
        mp, f = cfg["max_position_embeddings"], scaling["factor"]
        L = max(seq_len, mp)
        base = theta * ((f * L / mp) - (f - 1)) ** (dim / (dim - 2))
        return 1.0 / base ** expo, 1.0
    if kind == "llama3":
        f, lo, hi = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
        old = scaling["original_max_position_embeddings"]
        wavelen = 2 * math.pi / base_inv
        out = []
        for w, fr in zip(wavelen.tolist(), base_inv.tolist()):
            if w < old / hi:
                out.append(fr)
            elif w > old / lo:
                out.append(fr / f)
            else:
                s = (old / w - lo) / (hi - lo)
                out.append((1 - s) * fr / f + s * fr)
        return torch.tensor(out, dtype=torch.float64), 1.0
    if kind == "yarn":
        f = scaling.get("factor")
        orig = scaling.get("original_max_position_embeddings", cfg["max_position_embeddings"])
        if f is None:
            f = cfg["max_position_embeddings"] / orig

        def mscale(s, m=1.0):
            return 1.0 if s <= 1 else 0.1 * m * math.log(s) + 1.0
        att = scaling.get("attention_factor")
        if att is None:
            m, mall = scaling.get("mscale"), scaling.get("mscale_all_dim")
            att = mscale(f, m) / mscale(f, mall) if m and mall else mscale(f)
        bf, bs = scaling.get("beta_fast") or 32, scaling.get("beta_slow") or 1

        def corr(rot):
            return dim * math.log(orig / (rot * 2 * math.pi)) / (2 * math.log(theta))
        low, high = corr(bf), corr(bs)
        if scaling.get("truncate", True):
            low, high = math.floor(low), math.ceil(high)
        low, high = max(low, 0), min(high, dim - 1)
        if low == high:
            high += 0.001
        ramp = ((torch.arange(dim // 2, dtype=torch.float64) - low) / (high - low)).clamp(0, 1)
        extra = 1 - ramp  # 1: keep the original frequency (extrapolate), 0: divide by factor (interpolate)
        return base_inv / f * (1 - extra) + base_inv * extra, att
    if kind == "longrope":
        orig = cfg.get("original_max_position_embeddings") or scaling["original_max_position_embeddings"]
        f = scaling.get("factor") or cfg["max_position_embeddings"] / orig
        att = scaling.get("attention_factor")
        if att is None:
            att = 1.0 if f <= 1 else math.sqrt(1 + math.log(f) / math.log(orig))
        ext = torch.tensor(scaling["long_factor"] if seq_len > orig else scaling["short_factor"], dtype=torch.float64)
        return 1.0 / (ext * theta ** expo), att
    raise ValueError(f"rope type {kind}")


def rmsnorm(x, w, eps, offset=False):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * ((1 + w) if offset else w)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def apply_rope(x, cos, sin):
    """x [heads, n, hd]; the first cos.shape[-1] dims rotate (partial rotary), the rest pass through."""
    r = cos.shape[-1]
    xr, xp = x[..., :r], x[..., r:]
    return torch.cat((xr * cos + rotate_half(xr) * sin, xp), dim=-1)


def rope_cos_sin(cfg, layer, positions, seq_len):
    theta, scaling = layer_rope(cfg, layer)
    inv_freq, att = inv_freq_of(cfg, theta, scaling, seq_len)
    freqs = positions.to(torch.float64)[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos() * att, emb.sin() * att


def linear(W, lora, name, x):
    y = x @ W[name + ".weight"].T
    if name + ".bias" in W:
        y = y + W[name + ".bias"]
    if lora is not None and name in lora:
        A, B, scale = lora[name][:3]
        if len(lora[name]) == 4:  # DoRA: see dora_output
            return y + dora_output(W[name + ".weight"], A, B, scale, lora[name][3], x)
        y = y + scale * ((x @ A.T) @ B.T)
    return y


def gelu_tanh(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def softcap(x, cap):
    return x if cap is None else torch.tanh(x / cap) * cap


def forward(cfg, W, ids, lora=None, cache=None):
    """ids: list of new token ids. cache: None (no cache) or a dict updated in place
    ({layer: (k, v)} with 'len'). Returns logits [len(ids), vocab] float64."""
    a = arch(cfg)
    gemma = a in GEMMA
    H = cfg["hidden_size"]
    nh = cfg["num_attention_heads"]
    nkv = cfg["num_key_value_heads"]
    hd = head_dim_of(cfg)
    eps = cfg["rms_norm_eps"]
    start = cache["len"] if cache is not None else 0
    n = len(ids)
    pos = torch.arange(start, start + n)
    windows = layer_windows(cfg)
    scale = cfg["query_pre_attn_scalar"] ** -0.5 if gemma else hd ** -0.5
    qk_norm = a in ("Qwen3ForCausalLM", "Gemma3ForCausalLM")
    x = W["model.embed_tokens.weight"][torch.tensor(ids)]
    if gemma:
        x = x * math.sqrt(H)

    def norm(name, v):
        return rmsnorm(v, W[name + ".weight"], eps, offset=gemma)

    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        cos, sin = rope_cos_sin(cfg, i, pos, start + n)
        h = norm(p + "input_layernorm", x)
        if a == "Phi3ForCausalLM":
            qkv = linear(W, lora, p + "self_attn.qkv_proj", h)
            q, k, v = qkv.split([nh * hd, nkv * hd, nkv * hd], dim=-1)
        else:
            q, k, v = (linear(W, lora, p + f"self_attn.{s}_proj", h) for s in "qkv")
        q = q.view(n, nh, hd).transpose(0, 1)
        k = k.view(n, nkv, hd).transpose(0, 1)
        v = v.view(n, nkv, hd).transpose(0, 1)
        if qk_norm:
            q = norm(p + "self_attn.q_norm", q)
            k = norm(p + "self_attn.k_norm", k)
        q = apply_rope(q, cos, sin)
        k = apply_rope(k, cos, sin)
        if cache is not None:
            if i in cache:
                pk, pv = cache[i]
                k = torch.cat((pk, k), dim=1)
                v = torch.cat((pv, v), dim=1)
            cache[i] = (k, v)
        g = nh // nkv
        k = k.repeat_interleave(g, dim=0)  # kv head j serves query heads j*g .. j*g+g-1
        v = v.repeat_interleave(g, dim=0)
        total = k.shape[1]
        scores = softcap((q @ k.transpose(1, 2)) * scale, cfg.get("attn_logit_softcapping"))
        qpos = torch.arange(start, start + n)[:, None]
        kpos = torch.arange(total)[None, :]
        mask = kpos > qpos
        if windows[i] is not None:
            mask = mask | (kpos <= qpos - windows[i])  # a query sees itself and the window - 1 before it
        scores = scores.masked_fill(mask, float("-inf"))
        att = torch.softmax(scores, dim=-1) @ v
        att = linear(W, lora, p + "self_attn.o_proj", att.transpose(0, 1).reshape(n, nh * hd))
        if gemma:
            x = x + norm(p + "post_attention_layernorm", att)
            h = norm(p + "pre_feedforward_layernorm", x)
        else:
            x = x + att
            h = norm(p + "post_attention_layernorm", x)
        if a == "Phi3ForCausalLM":
            gt, up = linear(W, lora, p + "mlp.gate_up_proj", h).chunk(2, dim=-1)
        else:
            gt, up = linear(W, lora, p + "mlp.gate_proj", h), linear(W, lora, p + "mlp.up_proj", h)
        act = gelu_tanh(gt) if gemma else torch.nn.functional.silu(gt)
        mlp = linear(W, lora, p + "mlp.down_proj", act * up)
        x = x + (norm(p + "post_feedforward_layernorm", mlp) if gemma else mlp)
    x = norm("model.norm", x)
    head = W["model.embed_tokens.weight"] if tied(cfg) else W["lm_head.weight"]
    if cache is not None:
        cache["len"] = start + n
    return softcap(x @ head.T, cfg.get("final_logit_softcapping"))


def greedy_cached(cfg, W, ids, lora=None, steps=N_GREEDY):
    """Greedy decoding with a KV cache. Returns (tokens, min top1-top2 margin)."""
    cache = {"len": 0}
    logits = forward(cfg, W, ids, lora, cache)[-1]
    out, margin = [], float("inf")
    for _ in range(steps):
        top = torch.topk(logits, 2).values
        margin = min(margin, float(top[0] - top[1]))
        t = int(torch.argmax(logits))
        out.append(t)
        logits = forward(cfg, W, [t], lora, cache)[-1]
    return out, margin


# --------------------------------------------------------------------------------------------
# tokenizer
# --------------------------------------------------------------------------------------------

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]
MULTI = ["the", "ing", " a", " the", "th", "er", "in", "an", "ed", "on", " t", "and", "re"]


def make_tokens():
    toks = SPECIALS + [" "] + [chr(c) for c in range(ord("a"), ord("z") + 1)] \
        + [str(d) for d in range(10)] + list(".,?!':;-()") + MULTI
    assert len(toks) == 64 and len(set(toks)) == 64
    return toks


def encode(text, toks):
    """Greedy longest-prefix match over non-special tokens; unknown char -> <unk> (one per char)."""
    vocab = {t: i for i, t in enumerate(toks) if t not in SPECIALS}
    maxlen = max(len(t) for t in vocab)
    ids, i = [], 0
    while i < len(text):
        for L in range(min(maxlen, len(text) - i), 0, -1):
            if text[i:i + L] in vocab:
                ids.append(vocab[text[i:i + L]])
                i += L
                break
        else:
            ids.append(toks.index("<unk>"))
            i += 1
    return ids


TOKENIZER_TEXTS = [
    "the cat sat on the mat.",
    "hello, world!",
    "reading and writing (2024) - ok?",
    "a thing: in the end; re-entered'",
    "Hello World 42",      # uppercase letters are unknown -> <unk>
    "caf\u00e9 @ 9pm\tend",  # non-ASCII, '@' and tab are unknown -> <unk>
]

# --------------------------------------------------------------------------------------------
# model / adapter construction
# --------------------------------------------------------------------------------------------


def base_config(arch, model_type, **over):
    cfg = {
        "architectures": [arch],
        "model_type": model_type,
        "vocab_size": 64,
        "hidden_size": 32,
        "intermediate_size": 48,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "hidden_act": "silu",
        "max_position_embeddings": 128,
        "rms_norm_eps": 1e-5,
        "rope_theta": 500000.0,
        "tie_word_embeddings": False,
        "attention_bias": False,
        "mlp_bias": False,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": 0,
        "torch_dtype": "float32",
        "rope_scaling": None,
        "initializer_range": 0.02,
        "attention_dropout": 0.0,
        "use_cache": True,
    }
    cfg.update(over)
    return cfg


def make_weights(cfg, seed, qkv_bias=False):
    """Returns ordered list of (name, float32 tensor), named as the HF checkpoint names them."""
    g = torch.Generator().manual_seed(seed)

    def rn(*shape, std=0.2):
        return torch.randn(*shape, generator=g, dtype=torch.float32) * std

    a = arch(cfg)
    gemma = a in GEMMA

    def norm_w(n):  # Gemma stores w of (1 + w); the others w itself
        return rn(n, std=0.1) if gemma else 1 + rn(n, std=0.1)

    H, V, I = cfg["hidden_size"], cfg["vocab_size"], cfg["intermediate_size"]
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = head_dim_of(cfg)
    ws = [("model.embed_tokens.weight", rn(V, H))]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        ws.append((p + "input_layernorm.weight", norm_w(H)))
        if a == "Phi3ForCausalLM":
            ws.append((p + "self_attn.qkv_proj.weight", rn((nh + 2 * nkv) * hd, H)))
        else:
            ws.append((p + "self_attn.q_proj.weight", rn(nh * hd, H)))
            ws.append((p + "self_attn.k_proj.weight", rn(nkv * hd, H)))
            ws.append((p + "self_attn.v_proj.weight", rn(nkv * hd, H)))
        if qkv_bias:
            ws.append((p + "self_attn.q_proj.bias", rn(nh * hd, std=0.1)))
            ws.append((p + "self_attn.k_proj.bias", rn(nkv * hd, std=0.1)))
            ws.append((p + "self_attn.v_proj.bias", rn(nkv * hd, std=0.1)))
        if a in ("Qwen3ForCausalLM", "Gemma3ForCausalLM"):
            ws.append((p + "self_attn.q_norm.weight", norm_w(hd)))
            ws.append((p + "self_attn.k_norm.weight", norm_w(hd)))
        ws.append((p + "self_attn.o_proj.weight", rn(H, nh * hd)))
        ws.append((p + "post_attention_layernorm.weight", norm_w(H)))
        if gemma:
            ws.append((p + "pre_feedforward_layernorm.weight", norm_w(H)))
            ws.append((p + "post_feedforward_layernorm.weight", norm_w(H)))
        if a == "Phi3ForCausalLM":
            ws.append((p + "mlp.gate_up_proj.weight", rn(2 * I, H)))
        else:
            ws.append((p + "mlp.gate_proj.weight", rn(I, H)))
            ws.append((p + "mlp.up_proj.weight", rn(I, H)))
        ws.append((p + "mlp.down_proj.weight", rn(H, I)))
    ws.append(("model.norm.weight", norm_w(H)))
    if not tied(cfg):
        ws.append(("lm_head.weight", rn(V, H)))
    return ws


def write_json(path, obj, indent=2):
    with open(path, "w") as f:
        json.dump(obj, f, indent=indent)
        f.write("\n")


def module_shapes(cfg, W):
    return {m: tuple(W[m + ".weight"].shape) for m in linear_module_names(cfg)}


def adapter_config(base, **acfg_over):
    acfg = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base,
        "r": 8,
        "lora_alpha": 8,
        "lora_dropout": 0.0,
        "target_modules": None,
        "use_rslora": False,
        "use_dora": False,
        "fan_in_fan_out": False,
        "bias": "none",
        "modules_to_save": None,
        "rank_pattern": {},
        "alpha_pattern": {},
        "init_lora_weights": True,
        "layers_to_transform": None,
        "layers_pattern": None,
        "inference_mode": True,
    }
    acfg.update(acfg_over)
    return acfg


def adapter_tensors(cfg, W, acfg, seed, a_std, b_std):
    g = torch.Generator().manual_seed(seed)
    shapes = module_shapes(cfg, W)
    tensors = []
    for m, (r, alpha, scale) in lora_layout(cfg, acfg).items():
        out_f, in_f = shapes[m]
        A = torch.randn(r, in_f, generator=g, dtype=torch.float32) * a_std
        B = torch.randn(out_f, r, generator=g, dtype=torch.float32) * b_std  # non-zero on purpose
        tensors.append((f"base_model.model.{m}.lora_A.weight", A))
        tensors.append((f"base_model.model.{m}.lora_B.weight", B))
    return tensors


def make_adapter(folder, base, cfg, W, seed, a_std, b_std, **acfg_over):
    acfg = adapter_config(base, **acfg_over)
    tensors = adapter_tensors(cfg, W, acfg, seed, a_std, b_std)
    d = os.path.join(DATA, folder)
    os.makedirs(d, exist_ok=True)
    write_json(os.path.join(d, "adapter_config.json"), acfg)
    write_safetensors(os.path.join(d, "adapter_model.safetensors"), tensors, "F32")


# --------------------------------------------------------------------------------------------
# newer architectures and rope scalings (issue 11): configs as transformers' save_pretrained writes them
# --------------------------------------------------------------------------------------------

SMALL = dict(vocab_size=64, hidden_size=32, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, bos_token_id=1, eos_token_id=2, pad_token_id=0, torch_dtype="float32",
             initializer_range=0.02, attention_dropout=0.0, use_cache=True, transformers_version="4.57.1")


def small_config(arch_name, model_type, **over):
    cfg = {"architectures": [arch_name], "model_type": model_type, **SMALL}
    cfg.update(over)
    return dict(sorted(cfg.items()))  # save_pretrained writes keys sorted


def new_models():
    """(folder, config, weight seed, q/k/v bias) of every model added for issue 11."""
    llama = dict(hidden_act="silu", rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
                 attention_bias=False, mlp_bias=False, head_dim=8, pretraining_tp=1, max_position_embeddings=2048)
    qwen2 = dict(hidden_act="silu", rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=False,
                 max_position_embeddings=2048, use_sliding_window=False, sliding_window=None, max_window_layers=2)
    gemma = dict(hidden_act="gelu_pytorch_tanh", hidden_activation="gelu_pytorch_tanh", rms_norm_eps=1e-6,
                 head_dim=16, attention_bias=False, max_position_embeddings=2048, cache_implementation="hybrid")
    longrope_short = [1.0, 1.25, 1.5, 2.0, 2.5, 3.0]
    longrope_long = [1.0, 1.5, 2.5, 4.0, 6.0, 8.0]
    return [
        ("qwen3", small_config("Qwen3ForCausalLM", "qwen3", **{**qwen2, "head_dim": 16, "attention_bias": False,
                                                             "rope_theta": 1000000.0, "tie_word_embeddings": True,
                                                             "rope_scaling": None}), 2101, False),
        ("qwen2_window", small_config("Qwen2ForCausalLM", "qwen2", **{**qwen2, "use_sliding_window": True,
                                                                    "sliding_window": 4, "max_window_layers": 1,
                                                                    "rope_scaling": None}), 2102, True),
        ("mistral_window", small_config("MistralForCausalLM", "mistral", hidden_act="silu", rms_norm_eps=1e-5,
                                        rope_theta=10000.0, tie_word_embeddings=False, sliding_window=4,
                                        max_position_embeddings=2048, head_dim=8, rope_scaling=None), 2103, False),
        ("gemma2", small_config("Gemma2ForCausalLM", "gemma2", **gemma, rope_theta=10000.0, query_pre_attn_scalar=12,
                                attn_logit_softcapping=2.0, final_logit_softcapping=3.0, sliding_window=4), 2104, False),
        ("gemma3", small_config("Gemma3ForCausalLM", "gemma3_text", **{**gemma, "num_hidden_layers": 3},
                                rope_theta=1000000.0, rope_local_base_freq=10000.0,
                                rope_scaling={"factor": 8.0, "rope_type": "linear"}, query_pre_attn_scalar=16,
                                attn_logit_softcapping=None, final_logit_softcapping=None, sliding_window=4,
                                sliding_window_pattern=3,
                                layer_types=["sliding_attention", "sliding_attention", "full_attention"]), 2105, False),
        ("phi3", small_config("Phi3ForCausalLM", "phi3", num_attention_heads=2, num_key_value_heads=1, hidden_act="silu",
                              rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False, attention_bias=False,
                              max_position_embeddings=32, original_max_position_embeddings=8, partial_rotary_factor=0.75,
                              rope_scaling={"long_factor": longrope_long, "short_factor": longrope_short, "type": "longrope"},
                              sliding_window=None, embd_pdrop=0.0, resid_pdrop=0.0), 2106, False),
        ("llama_rope_llama3", small_config("LlamaForCausalLM", "llama", **llama, rope_scaling={
            "factor": 8.0, "high_freq_factor": 8.0, "low_freq_factor": 1.0, "original_max_position_embeddings": 256,
            "rope_type": "llama3"}), 2107, False),
        ("llama_rope_linear", small_config("LlamaForCausalLM", "llama", **llama,
                                           rope_scaling={"factor": 4.0, "rope_type": "linear"}), 2108, False),
        ("llama_rope_dynamic", small_config("LlamaForCausalLM", "llama", **{**llama, "max_position_embeddings": 8},
                                            rope_scaling={"factor": 2.0, "rope_type": "dynamic"}), 2109, False),
        ("qwen2_rope_yarn", small_config("Qwen2ForCausalLM", "qwen2", **{**qwen2, "max_position_embeddings": 256},
                                         num_attention_heads=2, num_key_value_heads=1, rope_scaling={
                                             "factor": 4.0, "original_max_position_embeddings": 64, "rope_type": "yarn"}),
         2110, True),
    ]


MIN_MARGIN = 0.005  # top-1 minus top-2 logit gap kept by every greedy step: far above float32 error (~3e-6)


def min_margin(cfg, W, lora, seqs):
    return min(greedy_cached(cfg, W, s, lora)[1] for s in seqs)


def write_new_models(seqs):
    """Writes each model; the weight seed steps by 1000 until greedy decoding has a clear margin."""
    out = {}
    for name, cfg, seed, bias in new_models():
        if arch(cfg) in GEMMA:
            cfg.pop("tie_word_embeddings", None)  # the config class default (True): save_pretrained omits it
        while True:
            ws = make_weights(cfg, seed=seed, qkv_bias=bias)
            if min_margin(cfg, {n: t.to(torch.float64) for n, t in ws}, None, seqs) >= MIN_MARGIN:
                break
            seed += 1000
        d = os.path.join(DATA, name)
        os.makedirs(d)
        write_json(os.path.join(d, "config.json"), cfg)
        write_safetensors(os.path.join(d, "model.safetensors"), ws, "F32")
        out[name] = load_model_dir(d)
    return out


# --------------------------------------------------------------------------------------------
# PEFT DoRA and modules_to_save (separate cases, written to peft_goldens.json)
# --------------------------------------------------------------------------------------------


def dora_output(Wt, A, B, scale, m, x):
    """What PEFT's DoRA layer adds to the base result W x + b in eval (no dropout):
    (m / ||W + s B A||_row - 1) * (W x) + m / ||W + s B A||_row * s * B A x; the bias is not rescaled."""
    norm = torch.linalg.norm(Wt + scale * (B @ A), dim=1)
    g = m / norm
    return (g - 1) * (x @ Wt.T) + g * (scale * ((x @ A.T) @ B.T))


def saved_module_key(key):
    """base_model.model.<module>.modules_to_save.<adapter>.<p> or base_model.model.<module>.<p> -> <module>.<p>."""
    key = key[len("base_model.model."):]
    parts = key.split(".")
    if "modules_to_save" in parts:
        i = parts.index("modules_to_save")
        parts = parts[:i] + parts[i + 2:]
    return ".".join(parts)


def load_peft_adapter(d, cfg, W):
    """({module: (A, B, scale[, m])}, W with the modules_to_save copies in place) in float64."""
    with open(os.path.join(d, "adapter_config.json")) as f:
        acfg = json.load(f)
    w = read_safetensors(os.path.join(d, "adapter_model.safetensors"))
    lora = {}
    for m, (r, alpha, scale) in lora_layout(cfg, acfg).items():
        A = w.pop(f"base_model.model.{m}.lora_A.weight")
        B = w.pop(f"base_model.model.{m}.lora_B.weight")
        if acfg.get("use_dora"):
            lora[m] = (A, B, scale, w.pop(f"base_model.model.{m}.lora_magnitude_vector"))
        else:
            lora[m] = (A, B, scale)
    W = dict(W)
    for key, t in w.items():  # what is left: the modules_to_save copies
        name = saved_module_key(key)
        module = name.rsplit(".", 1)[0]
        assert any(module.endswith(e) for e in acfg["modules_to_save"]), key
        assert W[name].shape == t.shape
        W[name] = t
    return lora, W


def make_peft_adapter(folder, base, cfg, W, seed, a_std, b_std, dora_noise=None, saved=None, **acfg_over):
    """A LoRA adapter as make_adapter writes it, plus DoRA magnitudes m = ||W||_row * (1 + dora_noise * N(0, 1))
    (PEFT initialises m = ||W||_row; trained ones move) and modules_to_save copies = base + N(0, std) under the
    given key form."""
    acfg = adapter_config(base, **acfg_over)
    tensors = adapter_tensors(cfg, W, acfg, seed, a_std, b_std)
    g = torch.Generator().manual_seed(seed + 1)
    if dora_noise is not None:
        for m in lora_layout(cfg, acfg):
            row = torch.linalg.norm(W[m + ".weight"], dim=1)
            tensors.append((f"base_model.model.{m}.lora_magnitude_vector",
                            (row * (1 + dora_noise * torch.randn(row.shape, generator=g, dtype=torch.float64))).float()))
    for name, (form, std) in (saved or {}).items():
        module, p = name.rsplit(".", 1)
        key = f"base_model.model.{module}.modules_to_save.default.{p}" if form == "wrapped" else f"base_model.model.{name}"
        tensors.append((key, (W[name] + std * torch.randn(W[name].shape, generator=g, dtype=torch.float64)).float()))
    d = os.path.join(DATA, folder)
    os.makedirs(d, exist_ok=True)
    write_json(os.path.join(d, "adapter_config.json"), acfg)
    write_safetensors(os.path.join(d, "adapter_model.safetensors"), tensors, "F32")


def make_peft_cases(models, sequences):
    """DoRA (llama_gqa: all-linear with a rank_pattern; qwen2_tied: q/k/v with biases, and o_proj) and
    modules_to_save (lm_head and the final norm in PEFT's saved form; embed_tokens in the wrapper form) adapters,
    and their logits, into peft_goldens.json (same case format as goldens.json)."""
    cfg, W = models["llama_gqa"]
    make_peft_adapter("llama_gqa.dora", "llama_gqa", cfg, W, 6101, 0.2, 0.03, dora_noise=0.3,
                      r=4, lora_alpha=8, target_modules="all-linear", use_dora=True, rank_pattern={"down_proj": 2})
    make_peft_adapter("llama_gqa.saved", "llama_gqa", cfg, W, 6202, 0.3, 0.08,
                      saved={"lm_head.weight": ("saved", 0.1), "model.norm.weight": ("saved", 0.2)},
                      r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], modules_to_save=["lm_head", "model.norm"])
    make_peft_adapter("llama_gqa.saved_embed", "llama_gqa", cfg, W, 6303, 0.3, 0.05,
                      saved={"model.embed_tokens.weight": ("wrapped", 0.15)},
                      r=4, lora_alpha=4, target_modules=["o_proj"], modules_to_save=["embed_tokens"])
    cfg, W = models["qwen2_tied"]
    make_peft_adapter("qwen2_tied.dora", "qwen2_tied", cfg, W, 6404, 0.3, 0.05, dora_noise=0.3,
                      r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], use_dora=True)
    cases = []
    for model, adapter in [("llama_gqa", "llama_gqa.dora"), ("llama_gqa", "llama_gqa.saved"),
                           ("llama_gqa", "llama_gqa.saved_embed"), ("qwen2_tied", "qwen2_tied.dora")]:
        cfg, W = models[model]
        lora, Wa = load_peft_adapter(os.path.join(DATA, adapter), cfg, W)
        logits = [forward(cfg, Wa, s, lora) for s in sequences]
        # The folded form W' = m * (W + sBA) / ||W + sBA||_row must give the same function (checked here, in float64).
        Wf = dict(Wa)
        for m, entry in lora.items():
            A, B, scale = entry[:3]
            merged = Wf[m + ".weight"] + scale * (B @ A)
            Wf[m + ".weight"] = merged * (entry[3] / torch.linalg.norm(merged, dim=1))[:, None] if len(entry) == 4 else merged
        assert max(float((forward(cfg, Wf, s) - lg).abs().max()) for s, lg in zip(sequences, logits)) < 1e-9
        diff = max(float((lg - forward(cfg, W, s)).abs().max()) for s, lg in zip(sequences, logits))
        name = model + "+" + adapter.split(".", 1)[1]
        print(f"{name:32s} adapter max|dlogit|={diff:.3f}")
        cases.append({"name": name, "model": model, "adapter": adapter, "sequences": sequences,
                      "logits": [[[rnd(v) for v in row] for row in lg.tolist()] for lg in logits], "greedy": []})
    with open(os.path.join(DATA, "peft_goldens.json"), "w") as f:
        json.dump(cases, f, separators=(",", ":"))
        f.write("\n")


def rnd(v):
    return float(f"{v:.7g}")


def main():
    if os.path.isdir(DATA):
        shutil.rmtree(DATA)
    os.makedirs(DATA)

    toks = make_tokens()
    tok_json = {"format": "amalgam-tokens-v1", "tokens": toks, "bos": "<s>", "eos": "</s>",
                "pad": "<pad>", "unk": "<unk>"}

    # ---- base models -----------------------------------------------------------------------
    models = {}

    cfg = base_config("LlamaForCausalLM", "llama")
    ws = make_weights(cfg, seed=1004)
    d = os.path.join(DATA, "llama_gqa")
    os.makedirs(d)
    write_json(os.path.join(d, "config.json"), cfg)
    write_safetensors(os.path.join(d, "model.safetensors"), ws, "F32")
    write_json(os.path.join(d, "tokenizer.amalgam.json"), tok_json)

    d = os.path.join(DATA, "llama_gqa_sharded")
    os.makedirs(d)
    write_json(os.path.join(d, "config.json"), cfg)
    s1 = [(n, t) for n, t in ws if n.startswith("model.embed_tokens.") or n.startswith("model.layers.0.")]
    s1_names = {n for n, _ in s1}
    s2 = [(n, t) for n, t in ws if n not in s1_names]
    f1, f2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
    total = write_safetensors(os.path.join(d, f1), s1, "F32") + write_safetensors(os.path.join(d, f2), s2, "F32")
    wm = {n: f1 for n, _ in s1}
    wm.update({n: f2 for n, _ in s2})
    write_json(os.path.join(d, "model.safetensors.index.json"),
               {"metadata": {"total_size": total}, "weight_map": dict(sorted(wm.items()))})

    cfg = base_config("LlamaForCausalLM", "llama", torch_dtype="bfloat16")
    ws = make_weights(cfg, seed=1212)
    d = os.path.join(DATA, "llama_bf16")
    os.makedirs(d)
    write_json(os.path.join(d, "config.json"), cfg)
    write_safetensors(os.path.join(d, "model.safetensors"), ws, "BF16")

    cfg = base_config("Qwen2ForCausalLM", "qwen2", intermediate_size=40, num_key_value_heads=1,
                      rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
                      use_sliding_window=False, sliding_window=4096, max_window_layers=2)
    for k in ("attention_bias", "mlp_bias"):
        cfg.pop(k)  # Qwen2 config has no such fields; q/k/v always have bias, o_proj never
    ws = make_weights(cfg, seed=1218, qkv_bias=True)
    d = os.path.join(DATA, "qwen2_tied")
    os.makedirs(d)
    write_json(os.path.join(d, "config.json"), cfg)
    write_safetensors(os.path.join(d, "model.safetensors"), ws, "F32")
    write_json(os.path.join(d, "tokenizer.amalgam.json"), tok_json)

    cfg = base_config("MistralForCausalLM", "mistral", head_dim=16, sliding_window=64, rope_theta=10000.0)
    for k in ("attention_bias", "mlp_bias"):
        cfg.pop(k)
    ws = make_weights(cfg, seed=1275)
    d = os.path.join(DATA, "mistral")
    os.makedirs(d)
    write_json(os.path.join(d, "config.json"), cfg)
    write_safetensors(os.path.join(d, "model.safetensors"), ws, "F32")

    for name in ("llama_gqa", "llama_gqa_sharded", "llama_bf16", "qwen2_tied", "mistral"):
        models[name] = load_model_dir(os.path.join(DATA, name))

    # ---- adapters ----------------------------------------------------------------------------
    cfg, W = models["llama_gqa"]
    make_adapter("llama_gqa.lora_qv", "llama_gqa", cfg, W, 5184, 0.3, 0.08,
                 r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    make_adapter("llama_gqa.lora_all", "llama_gqa", cfg, W, 5135, 0.2, 0.025,
                 r=8, lora_alpha=16, target_modules="all-linear",
                 rank_pattern={"down_proj": 2}, alpha_pattern={r"layers\.1\.self_attn\.o_proj": 4})
    make_adapter("llama_gqa.lora_rslora", "llama_gqa", cfg, W, 5010, 0.2, 0.04,
                 r=4, lora_alpha=8, target_modules=r".*\.(q_proj|k_proj|up_proj)", use_rslora=True)
    cfg, W = models["qwen2_tied"]
    make_adapter("qwen2_tied.lora_all", "qwen2_tied", cfg, W, 5058, 0.3, 0.05,
                 r=4, lora_alpha=4, target_modules="all-linear")

    # ---- issue 11: newer architectures and rope scalings, each with an all-linear adapter ------
    # Longer than the sliding windows (4) and than the original max positions of dynamic and longrope (8).
    g = torch.Generator().manual_seed(9011)
    long_sequences = [torch.randint(3, 64, (n,), generator=g).tolist() for n in (6, 9, 14)]
    news = write_new_models(long_sequences)
    models.update(news)
    for k, name in enumerate(news):
        cfg, W = news[name]
        seed = 6100 + k
        while True:
            make_adapter(name + ".lora_all", name, cfg, W, seed, 0.2, 0.04, r=4, lora_alpha=8,
                         target_modules="all-linear")
            lora = load_adapter_dir(os.path.join(DATA, name + ".lora_all"), cfg)
            if min_margin(cfg, W, lora, long_sequences) >= MIN_MARGIN:
                break
            seed += 1000

    # ---- goldens -----------------------------------------------------------------------------
    g = torch.Generator().manual_seed(9009)
    sequences = [torch.randint(3, 64, (n,), generator=g).tolist() for n in (7, 4, 11)]

    cases_spec = [(m, None) for m in ("llama_gqa", "llama_gqa_sharded", "llama_bf16", "qwen2_tied", "mistral")]
    cases_spec += [("llama_gqa", "llama_gqa.lora_qv"), ("llama_gqa", "llama_gqa.lora_all"),
                   ("llama_gqa", "llama_gqa.lora_rslora"), ("qwen2_tied", "qwen2_tied.lora_all")]
    cases_spec = [(m, a, sequences) for m, a in cases_spec]
    for name in news:
        cases_spec += [(name, None, long_sequences), (name, name + ".lora_all", long_sequences)]
    cases = []
    for model, adapter, sequences in cases_spec:
        cfg, W = models[model]
        lora = load_adapter_dir(os.path.join(DATA, adapter), cfg) if adapter else None
        logits, greedy, margins = [], [], []
        for s in sequences:
            lg = forward(cfg, W, s, lora)
            logits.append([[rnd(v) for v in row] for row in lg.tolist()])
            toks_out, margin = greedy_cached(cfg, W, s, lora)
            greedy.append(toks_out)
            margins.append(margin)
        name = model + ("+" + adapter.split(".", 1)[1] if adapter else "")
        info = ""
        if adapter:
            base = [forward(cfg, W, s) for s in sequences]
            diff = [float((forward(cfg, W, s, lora) - b).abs().max()) for s, b in zip(sequences, base)]
            mean = [float((forward(cfg, W, s, lora) - b).abs().mean()) for s, b in zip(sequences, base)]
            info = f" adapter max|dlogit|={max(diff):.3f} mean|dlogit|={sum(mean)/len(mean):.3f}"
        print(f"{name:32s} greedy={greedy} min_margin={min(margins):.4f}{info}")
        cases.append({"name": name, "model": model, "adapter": adapter, "sequences": sequences,
                      "logits": logits, "greedy": greedy,
                      "greedy_min_margin": rnd(min(margins))})
    with open(os.path.join(DATA, "goldens.json"), "w") as f:
        json.dump(cases, f, separators=(",", ":"))
        f.write("\n")

    make_peft_cases(models, sequences)

    tcases = [{"text": t, "ids": encode(t, toks)} for t in TOKENIZER_TEXTS]
    write_json(os.path.join(DATA, "tokenizer_goldens.json"), tcases)
    for c in tcases:
        print(repr(c["text"]), c["ids"])


if __name__ == "__main__":
    main()
