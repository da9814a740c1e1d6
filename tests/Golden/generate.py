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


def linear_module_names(cfg):
    """All nn.Linear module names of the model except lm_head (the output layer)."""
    return [f"model.layers.{i}.{s}" for i in range(cfg["num_hidden_layers"]) for s in LINEAR_SUFFIXES]


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


def rmsnorm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def rope_cos_sin(positions, head_dim, theta):
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    freqs = positions.to(torch.float64)[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


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


def forward(cfg, W, ids, lora=None, cache=None):
    """ids: list of new token ids. cache: None (no cache) or a dict updated in place
    ({layer: (k, v)} with 'len'). Returns logits [len(ids), vocab] float64."""
    H = cfg["hidden_size"]
    nh = cfg["num_attention_heads"]
    nkv = cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or H // nh
    eps = cfg["rms_norm_eps"]
    start = cache["len"] if cache is not None else 0
    n = len(ids)
    pos = torch.arange(start, start + n)
    cos, sin = rope_cos_sin(pos, hd, cfg["rope_theta"])
    x = W["model.embed_tokens.weight"][torch.tensor(ids)]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rmsnorm(x, W[p + "input_layernorm.weight"], eps)
        q = linear(W, lora, p + "self_attn.q_proj", h).view(n, nh, hd).transpose(0, 1)
        k = linear(W, lora, p + "self_attn.k_proj", h).view(n, nkv, hd).transpose(0, 1)
        v = linear(W, lora, p + "self_attn.v_proj", h).view(n, nkv, hd).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
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
        scores = (q @ k.transpose(1, 2)) / math.sqrt(hd)
        qpos = torch.arange(start, start + n)[:, None]
        kpos = torch.arange(total)[None, :]
        mask = kpos > qpos
        sw = cfg.get("sliding_window") if cfg.get("model_type") == "mistral" else None
        if sw is not None:
            mask = mask | (kpos <= qpos - sw)  # never triggers here: sequences are shorter than the window
        scores = scores.masked_fill(mask, float("-inf"))
        a = torch.softmax(scores, dim=-1) @ v
        a = a.transpose(0, 1).reshape(n, nh * hd)
        x = x + linear(W, lora, p + "self_attn.o_proj", a)
        h = rmsnorm(x, W[p + "post_attention_layernorm.weight"], eps)
        gt = linear(W, lora, p + "mlp.gate_proj", h)
        up = linear(W, lora, p + "mlp.up_proj", h)
        x = x + linear(W, lora, p + "mlp.down_proj", torch.nn.functional.silu(gt) * up)
    x = rmsnorm(x, W["model.norm.weight"], eps)
    head = W["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else W["lm_head.weight"]
    if cache is not None:
        cache["len"] = start + n
    return x @ head.T


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
    """Returns ordered list of (name, float32 tensor)."""
    g = torch.Generator().manual_seed(seed)

    def rn(*shape, std=0.2):
        return torch.randn(*shape, generator=g, dtype=torch.float32) * std

    H, V, I = cfg["hidden_size"], cfg["vocab_size"], cfg["intermediate_size"]
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or H // nh
    ws = [("model.embed_tokens.weight", rn(V, H))]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        ws.append((p + "input_layernorm.weight", 1 + rn(H, std=0.1)))
        ws.append((p + "self_attn.q_proj.weight", rn(nh * hd, H)))
        ws.append((p + "self_attn.k_proj.weight", rn(nkv * hd, H)))
        ws.append((p + "self_attn.v_proj.weight", rn(nkv * hd, H)))
        if qkv_bias:
            ws.append((p + "self_attn.q_proj.bias", rn(nh * hd, std=0.1)))
            ws.append((p + "self_attn.k_proj.bias", rn(nkv * hd, std=0.1)))
            ws.append((p + "self_attn.v_proj.bias", rn(nkv * hd, std=0.1)))
        ws.append((p + "self_attn.o_proj.weight", rn(H, nh * hd)))
        ws.append((p + "post_attention_layernorm.weight", 1 + rn(H, std=0.1)))
        ws.append((p + "mlp.gate_proj.weight", rn(I, H)))
        ws.append((p + "mlp.up_proj.weight", rn(I, H)))
        ws.append((p + "mlp.down_proj.weight", rn(H, I)))
    ws.append(("model.norm.weight", 1 + rn(H, std=0.1)))
    if not cfg["tie_word_embeddings"]:
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

    # ---- goldens -----------------------------------------------------------------------------
    g = torch.Generator().manual_seed(9009)
    sequences = [torch.randint(3, 64, (n,), generator=g).tolist() for n in (7, 4, 11)]

    cases_spec = [(m, None) for m in ("llama_gqa", "llama_gqa_sharded", "llama_bf16", "qwen2_tied", "mistral")]
    cases_spec += [("llama_gqa", "llama_gqa.lora_qv"), ("llama_gqa", "llama_gqa.lora_all"),
                   ("llama_gqa", "llama_gqa.lora_rslora"), ("qwen2_tied", "qwen2_tied.lora_all")]
    cases = []
    for model, adapter in cases_spec:
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
