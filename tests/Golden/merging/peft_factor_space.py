#!/usr/bin/python3
"""Goldens for PEFT's add_weighted_adapter on LoRA experts, from an independent numpy implementation of PEFT's
utils/merge_utils.py formulas (prune, calculate_majority_sign_mask, disjoint_merge, ties, dare_linear, dare_ties,
magnitude_prune) and of the two ways add_weighted_adapter feeds them:

- factor space (combination_type ties / dare_linear / dare_ties / magnitude_prune; Amalgam: output: factor_linear
  with flavor: peft): the lists [A_i] and [B_i] are merged separately with weights sqrt(w_i * s_i) (Amalgam puts the
  sign of a negative w_i * s_i on A, where PEFT's math.sqrt fails);
- svd types (svd, ties_svd, ...; Amalgam: output: adapter with peft_double_scale: true): the dense
  delta_i = s_i * B_i @ A_i (get_delta_weight, already scaled) merged with weights w_i * s_i (the scale twice).

Inputs are the committed golden adapters llama_gqa.lora_qv (r 4, alpha 8: s = 2) and llama_gqa.lora_rslora (r 4,
alpha 8, rsLoRA: s = 4), which share q_proj. DARE's Bernoulli masks are drawn here and written out; the C# test
injects them. Run: /usr/bin/python3 tests/Golden/merging/peft_factor_space.py  (writes peft_factor_cases.json)
"""
import json
import math
import os
import struct

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data")
rng = np.random.default_rng(20261201)


def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32"
        b, e = info["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + b:8 + n + e], dtype="<f4").astype(np.float64).reshape(info["shape"])
    return out


def load_adapter(folder):
    """{module: (A, B, scale)}; these adapters have no rank/alpha patterns."""
    d = os.path.join(DATA, folder)
    cfg = json.load(open(os.path.join(d, "adapter_config.json")))
    s = cfg["lora_alpha"] / (math.sqrt(cfg["r"]) if cfg.get("use_rslora") else cfg["r"])
    w = read_safetensors(os.path.join(d, "adapter_model.safetensors"))
    mods = sorted({k[len("base_model.model."):-len(".lora_A.weight")] for k in w if k.endswith(".lora_A.weight")})
    return {m: (w[f"base_model.model.{m}.lora_A.weight"], w[f"base_model.model.{m}.lora_B.weight"], s) for m in mods}


# ---------------------------------------------------------------- PEFT's merge_utils, written out in numpy
def magnitude_based_pruning(t, density):
    k = int(density * t.size)
    flat = np.abs(t).reshape(-1)
    keep = sorted(range(flat.size), key=lambda i: (-flat[i], i))[:k]  # torch.topk; ties: lower index (Amalgam's rule)
    mask = np.zeros(flat.size)
    mask[keep] = 1
    return t * mask.reshape(t.shape)


def prune(t, density, method, mask=None):
    if density >= 1:
        return t
    if method == "magnitude":
        return magnitude_based_pruning(t, density)
    return t * mask / density  # random_pruning with rescale=True


def majority_sign_mask(stacked, method):
    sign = np.sign(stacked)
    magnitude = stacked.sum(axis=0) if method == "total" else sign.sum(axis=0)
    majority = np.where(magnitude >= 0, 1.0, -1.0)
    return sign == majority


def disjoint_merge(weighted, mask):
    return (weighted * mask).sum(axis=0) / np.maximum(mask.sum(axis=0), 1.0)


def weighted(stacked, w):
    return stacked * np.asarray(w).reshape((-1,) + (1,) * (stacked.ndim - 1))


def combine(kind, tensors, w, density, sign_method="total", masks=None):
    if kind in ("ties", "magnitude_prune"):
        stacked = np.stack([prune(t, density, "magnitude") for t in tensors])
    elif kind in ("dare_linear", "dare_ties"):
        stacked = np.stack([prune(t, density, "random", m) for t, m in zip(tensors, masks)])
    else:  # task_arithmetic (PEFT's linear / svd)
        stacked = np.stack(tensors)
    if kind in ("ties", "dare_ties"):
        return disjoint_merge(weighted(stacked, w), majority_sign_mask(stacked, sign_method))
    return weighted(stacked, w).sum(axis=0)


# ---------------------------------------------------------------- add_weighted_adapter
EXPERTS = ["llama_gqa.lora_qv", "llama_gqa.lora_rslora"]
ADAPTERS = [load_adapter(e) for e in EXPERTS]
MODULES = sorted({m for a in ADAPTERS for m in a})


def flat(a):
    return [float(f"{v:.9g}") for v in np.asarray(a).reshape(-1)]


def factor_case(name, kind, weights, density, sign_method="total"):
    mods = {}
    for m in MODULES:
        present = [(a[m], w) for a, w in zip(ADAPTERS, weights) if m in a]
        products = [w * s for (_, _, s), w in present]
        roots = [math.sqrt(abs(p)) for p in products]
        entry = {}
        for part, index, ws in (("A", 0, [math.copysign(r, p) for r, p in zip(roots, products)]), ("B", 1, roots)):
            tensors = [f[index] for f, _ in present]
            masks = [(rng.random(t.shape) < density).astype(np.float64) for t in tensors] if kind.startswith("dare") else None
            entry[part] = flat(combine(kind, tensors, ws, density, sign_method, masks))
            if masks is not None:
                entry[part + "_masks"] = [[int(v) for v in mk.reshape(-1)] for mk in masks]
        mods[m] = entry
    g = {"flavor": "peft", "density": density}
    if sign_method == "frequency":
        g["consensus"] = "count"
    return {"name": name, "method": kind, "output": "factor_linear", "global": g,
            "weights": weights, "experts": EXPERTS, "modules": mods}


def svd_case(name, kind, weights, density, peft_flavor):
    """PEFT's svd types with their double scale; the expected dense update before truncation (rank = full)."""
    mods = {}
    for m in MODULES:
        present = [(a[m], w) for a, w in zip(ADAPTERS, weights) if m in a]
        deltas = [s * (B @ A) for (A, B, s), _ in present]
        mods[m] = {"product": flat(combine(kind, deltas, [w * s for (_, _, s), w in present], density))}
    g = {"density": density} if kind != "task_arithmetic" else {}
    if peft_flavor:
        g["flavor"] = "peft"
    return {"name": name, "method": kind, "output": "adapter", "peft_double_scale": True, "global": g,
            "weights": weights, "experts": EXPERTS, "modules": mods}


cases = [
    factor_case("ties", "ties", [0.7, 1.3], 0.5),
    factor_case("ties/frequency", "ties", [1.0, 0.6], 0.4, "frequency"),
    factor_case("ties/negative_weight", "ties", [0.8, -0.5], 0.6),
    factor_case("magnitude_prune", "magnitude_prune", [0.9, 0.4], 0.6),
    factor_case("dare_linear", "dare_linear", [0.7, 1.3], 0.5),
    factor_case("dare_ties", "dare_ties", [1.0, 0.5], 0.7),
    svd_case("svd/double_scale", "task_arithmetic", [0.7, 1.3], 1.0, False),
    svd_case("ties_svd/double_scale", "ties", [0.7, 1.3], 0.5, True),
]
out = os.path.join(HERE, "peft_factor_cases.json")
with open(out, "w") as f:
    json.dump({"generator": "tests/Golden/merging/peft_factor_space.py", "numpy": np.__version__, "cases": cases}, f, separators=(",", ":"))
    f.write("\n")
print(f"wrote {len(cases)} cases to {out} ({os.path.getsize(out)} bytes)")
