#!/usr/bin/python3
"""Golden cases for Amalgam's merge methods, from an independent float64 PyTorch implementation of the formulas
in /work/shared/notes/merge-semantics.md (mergekit, PEFT and FusionBench conventions) and docs/merging.md.

Run with Debian's Python (torch 1.13, numpy):  /usr/bin/python3 tests/Golden/merging/generate.py
Writes tests/Golden/merging/cases.json. Randomised methods (DARE, DELLA) also write the keep-masks they drew, so the
C# side can inject them and check the deterministic rest exactly; the random draw itself is tested statistically.

Ranking rule used everywhere (and by Amalgam): larger |x| first; equal magnitudes: lower flat index first
(for the whole-model scope: lower tensor name (ordinal), then lower flat index).
"""
import json
import math
import os

import torch

torch.manual_seed(20260501)
F64 = torch.float64


def rnd(*shape):
    return torch.randn(*shape, dtype=F64)


# ---------------------------------------------------------------- sparsifiers (pure-Python ranking, no torch.sort)
def ranked(flat_abs):
    """Indices from highest to lowest rank."""
    return sorted(range(len(flat_abs)), key=lambda i: (-flat_abs[i], i))


def magnitude_mask(delta, density):
    if density >= 1:
        return torch.ones_like(delta)
    n = delta.numel()
    k = int(density * n)
    order = ranked(delta.abs().reshape(-1).tolist())
    m = torch.zeros(n, dtype=F64)
    for i in order[:k]:
        m[i] = 1.0
    return m.reshape(delta.shape)


def breadcrumbs_mask(delta, density, gamma):
    if density >= 1:
        return torch.ones_like(delta)
    n = delta.numel()
    target = int(density * n)
    top = int(gamma * n)
    if n - target - top < 0:
        top = n - target
    order = ranked(delta.abs().reshape(-1).tolist())
    m = torch.zeros(n, dtype=F64)
    for i in order[top:top + target]:
        m[i] = 1.0
    return m.reshape(delta.shape)


def della_probs(delta, density, eps):
    rows = delta.reshape(1, -1) if delta.dim() < 2 else delta.reshape(delta.shape[0], -1)
    n = rows.shape[1]
    p = torch.empty_like(rows)
    for r in range(rows.shape[0]):
        order = ranked(rows[r].abs().tolist())  # highest first
        for pos, i in enumerate(order):
            rank_norm = (n - 1 - pos) / (n - 1)  # lowest magnitude -> 0
            p[r, i] = density - eps + 2 * eps * rank_norm
    return p.reshape(delta.shape)


def rescale(delta, mask, rule, keep_prob):
    masked = delta * mask
    if rule == "l1":
        before = delta.abs().sum().item()
        after = masked.abs().sum().item()
        if before < 1e-7 or after < 1e-7:
            return masked
        return masked * (before / after)
    if rule == "inverse_density":
        return torch.where(mask != 0, masked / keep_prob, torch.zeros_like(masked))
    return masked


# ---------------------------------------------------------------- the task-vector pipeline, written out per flavor
RECIPES = {
    # name: (sparsifier, consensus, mergekit normalize, mergekit rescale)
    "task_arithmetic": (None, False, False, False),
    "ties": ("magnitude", True, True, False),
    "dare_linear": ("bernoulli", False, False, True),
    "dare_ties": ("bernoulli", True, False, True),
    "magnitude_prune": ("magnitude", False, False, False),
    "breadcrumbs": ("breadcrumbs", False, False, False),
    "breadcrumbs_ties": ("breadcrumbs", True, False, False),
    "della": ("della", True, True, True),
    "della_linear": ("della", False, False, True),
}


def flavor_defaults(method, flavor):
    sp, cons, mk_norm, mk_rescale = RECIPES[method]
    random = sp in ("bernoulli", "della")
    if flavor == "peft":
        return dict(consensus="sum", consensus_on="unweighted", divisor="count", normalize=cons,
                    rescale="inverse_density" if random else "none", trim_scope="tensor", **{"lambda": 1.0})
    if flavor == "fusion_bench":
        return dict(consensus="sum", consensus_on="unweighted", divisor="none", normalize=False,
                    rescale="inverse_density" if random else "none",
                    trim_scope="model" if sp == "magnitude" else "tensor", **{"lambda": 0.3})
    return dict(consensus="sum", consensus_on="weighted", divisor="weights", normalize=mk_norm,
                rescale="l1" if (sp and mk_rescale) else "none", trim_scope="tensor", **{"lambda": 1.0})


def pipeline(method, g, per_model, base, models, masks=None, model_masks=None):
    """g: global params, per_model: list of dicts. masks: injected random masks; model_masks: whole-model top-k masks."""
    sp, cons, _, _ = RECIPES[method]
    o = flavor_defaults(method, g.get("flavor", "mergekit"))
    o.update({k: v for k, v in g.items() if k != "flavor"})
    drawn = []
    sparse = []
    for i, theta in enumerate(models):
        d = theta - base
        dens = per_model[i].get("density", 1.0)
        if sp is None or dens >= 1:
            sparse.append(d)
            drawn.append(None)
            continue
        keep_p = torch.full_like(d, dens)
        if sp == "magnitude":
            m = model_masks[i] if model_masks is not None else magnitude_mask(d, dens)
        elif sp == "breadcrumbs":
            m = breadcrumbs_mask(d, dens, per_model[i].get("gamma", 0.01))
        elif sp == "bernoulli":
            m = masks[i] if masks is not None else torch.bernoulli(torch.full_like(d, dens))
        else:
            keep_p = della_probs(d, dens, per_model[i].get("epsilon", 0.15))
            m = masks[i] if masks is not None else torch.bernoulli(keep_p)
        drawn.append(m)
        sparse.append(rescale(d, m, o["rescale"], keep_p))
    w = [pm.get("weight", 1.0) for pm in per_model]
    weighted = [w[i] * sparse[i] for i in range(len(models))]
    out = torch.zeros_like(base)
    div = torch.zeros_like(base)
    if cons:
        src = weighted if o["consensus_on"] == "weighted" else sparse
        if o["consensus"] == "sum":
            score = sum(src)
        else:
            score = sum(torch.sign(x) for x in src)
        elected = torch.where(score >= 0, 1.0, -1.0).to(F64)
        for i in range(len(models)):
            agree = (torch.sign(src[i]) == elected).to(F64)
            out += weighted[i] * agree
            div += (w[i] * agree) if o["divisor"] == "weights" else agree
        if o["divisor"] == "weights":
            div[div == 0] = 1.0
        elif o["divisor"] == "count":
            div = torch.clamp(div, min=1.0)
    else:
        for i in range(len(models)):
            out += weighted[i]
        if o["divisor"] == "weights":
            div = torch.full_like(base, float(sum(w)))
            div[div.abs() < 1e-8] = 1.0
        elif o["divisor"] == "count":
            div = torch.full_like(base, float(len(models)))
    if o["normalize"] and o["divisor"] != "none":
        out = out / div
    out = out * o["lambda"]
    return base + out, drawn


# ---------------------------------------------------------------- other methods
def linear(models, per_model, normalize=True):
    w = [pm.get("weight", 1.0) for pm in per_model]
    s = sum(w[i] * models[i] for i in range(len(models)))
    return s / sum(w) if normalize else s


def slerp(t, v0, v1):
    a = v0.reshape(-1).tolist()
    b = v1.reshape(-1).tolist()
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(x * x for x in b))
    ua = [x / na for x in a] if na > 1e-8 else a
    ub = [x / nb for x in b] if nb > 1e-8 else b
    dot = sum(x * y for x, y in zip(ua, ub))
    if abs(dot) > 0.9995:
        return (1 - t) * v0 + t * v1
    th = math.acos(dot)
    return math.sin((1 - t) * th) / math.sin(th) * v0 + math.sin(t * th) / math.sin(th) * v1


def model_stock(base, models):
    offs = [(m - base).reshape(-1) for m in models]
    cs = []
    for i in range(len(offs)):
        for j in range(i + 1, len(offs)):
            c = float(torch.dot(offs[i], offs[j]) / max(offs[i].norm().item() * offs[j].norm().item(), 1e-6))
            cs.append(min(1.0, max(-1.0, c)))
    cos = sum(cs) / len(cs)
    n = len(models)
    t = n * cos / (1 + (n - 1) * cos)
    return t * (sum(models) / n) + (1 - t) * base


def is_matrix(name, t):
    return t.dim() == 2 and "embed_tokens" not in name and "lm_head" not in name


def polar(x):
    # nearest matrix with orthonormal columns (polar factor): x = P S Q^T -> P Q^T
    u, s, vh = torch.linalg.svd(x, full_matrices=False)
    return u @ vh


def tsv(name, base, models, per_model, lam=1.0):
    ds = [(m - base) * pm.get("weight", 1.0) for m, pm in zip(models, per_model)]
    if not is_matrix(name, base):
        return base + lam * (sum(ds) / len(ds))
    m, n = base.shape
    r = min(m, n)
    T = len(ds)
    k = int(r * (1.0 / T))
    U = torch.zeros(m, r, dtype=F64)
    S = torch.zeros(r, dtype=F64)
    V = torch.zeros(r, n, dtype=F64)
    for i, d in enumerate(ds):
        u, s, vh = torch.linalg.svd(d, full_matrices=False)
        U[:, i * k:(i + 1) * k] = u[:, :k]
        S[i * k:(i + 1) * k] = s[:k]
        V[i * k:(i + 1) * k, :] = vh[:k, :]
    # only the columns/rows with non-zero sigma matter; orthogonalise those (the polar factor of the
    # used block equals that block of the polar factor of the zero-padded matrix)
    used = T * k
    Uo = torch.zeros_like(U)
    Vo = torch.zeros_like(V)
    Uo[:, :used] = polar(U[:, :used])
    Vo[:used, :] = polar(V[:used, :].T).T
    return base + lam * (Uo @ torch.diag(S) @ Vo)


def iso_c(name, base, models, per_model, lam=1.0):
    ds = [(m - base) * pm.get("weight", 1.0) for m, pm in zip(models, per_model)]
    if not is_matrix(name, base):
        return base + lam * (sum(ds) / len(ds))
    u, s, vh = torch.linalg.svd(sum(ds), full_matrices=False)
    return base + lam * (s.mean() * (u @ vh))


# ---------------------------------------------------------------- whole-model top-k (trim_scope: model)
def whole_model_masks(tensors, models_idx, density):
    """tensors: list of (name, base, models). Returns {name: mask} for model models_idx."""
    entries = []  # (abs, name, flat index)
    for name, base, models in tensors:
        d = (models[models_idx] - base).abs().reshape(-1).tolist()
        entries += [(v, name, j) for j, v in enumerate(d)]
    n = len(entries)
    k = int(density * n)
    entries.sort(key=lambda e: (-e[0], e[1].encode("utf-16-be"), e[2]))
    keep = {(e[1], e[2]) for e in entries[:k]}
    out = {}
    for name, base, models in tensors:
        m = torch.zeros(base.numel(), dtype=F64)
        for j in range(base.numel()):
            if (name, j) in keep:
                m[j] = 1.0
        out[name] = m.reshape(base.shape)
    return out


# ---------------------------------------------------------------- cases
def L(t):
    return t.reshape(-1).tolist()


def tensor_entry(name, base, models, expected, masks=None):
    e = {"name": name, "shape": list(base.shape), "base": L(base), "models": [L(m) for m in models], "expected": L(expected)}
    if masks is not None and any(m is not None for m in masks):
        e["masks"] = [L(m) if m is not None else None for m in masks]
    return e


base = rnd(6, 8)
models = [base + 0.5 * rnd(6, 8) for _ in range(3)]
PM = [{"weight": 1.0, "density": 0.3}, {"weight": 0.7, "density": 0.5}, {"weight": 1.3, "density": 0.7}]
cases = []


def add(name, method, g, pm, tensors):
    cases.append({"name": name, "method": method, "global": g, "per_model": pm, "tensors": tensors})


def add_pipeline(name, method, g, pm=PM, b=base, ms=models, tname="layers.0.mlp.up_proj.weight"):
    exp, drawn = pipeline(method, g, pm, b, ms)
    random = RECIPES[method][0] in ("bernoulli", "della")
    add(name, method, g, pm, [tensor_entry(tname, b, ms, exp, drawn if random else None)])


for m in RECIPES:
    pm = [dict(p) for p in PM]
    if m.startswith("breadcrumbs"):
        for p, gm in zip(pm, [0.05, 0.1, 0.0]):
            p["gamma"] = gm
    if m.startswith("della"):
        for p, e in zip(pm, [0.1, 0.2, 0.25]):
            p["epsilon"] = e
    add_pipeline(f"{m}/mergekit", m, {}, pm)

# variants of the mergekit conventions
add_pipeline("ties/mergekit/count_lambda", "ties", {"consensus": "count", "lambda": 0.5})
add_pipeline("ties/mergekit/negative_weight", "ties", {}, [{"weight": 1.0, "density": 0.5}, {"weight": -0.6, "density": 0.5}, {"weight": 0.8, "density": 0.5}])
add_pipeline("task_arithmetic/mergekit/normalize", "task_arithmetic", {"normalize": True, "lambda": 0.8})
add_pipeline("dare_ties/mergekit/normalize", "dare_ties", {"normalize": True})
add_pipeline("della/mergekit/inverse_density", "della", {"rescale": "inverse_density"},
             [{"weight": 1.0, "density": 0.4, "epsilon": 0.1}, {"weight": 0.5, "density": 0.5, "epsilon": 0.2}, {"weight": 1.0, "density": 0.6, "epsilon": 0.3}])
add_pipeline("magnitude_prune/mergekit/l1", "magnitude_prune", {"rescale": "l1"})

for m in ["ties", "dare_linear", "dare_ties", "magnitude_prune", "task_arithmetic"]:
    add_pipeline(f"{m}/peft", m, {"flavor": "peft"})
add_pipeline("ties/peft/frequency", "ties", {"flavor": "peft", "consensus": "count"})

for m in ["task_arithmetic", "dare_linear", "dare_ties"]:
    add_pipeline(f"{m}/fusion_bench", m, {"flavor": "fusion_bench"})
add_pipeline("ties/fusion_bench/tensor_scope", "ties", {"flavor": "fusion_bench", "trim_scope": "tensor"})

# trim_scope: model (FusionBench's whole-model top-k), several tensors of different sizes
wm = [("model.layers.0.mlp.up_proj.weight", base, models),
      ("model.layers.0.input_layernorm.weight", rnd(8), None),
      ("lm_head.weight", rnd(4, 5), None)]
wm = [(n, b, ms if ms is not None else [b + 0.5 * rnd(*b.shape) for _ in range(3)]) for n, b, ms in wm]
PMW = [{"weight": 1.0, "density": 0.2}, {"weight": 1.0, "density": 0.35}, {"weight": 1.0, "density": 0.6}]
for cname, method, g in [("ties/fusion_bench", "ties", {"flavor": "fusion_bench"}),
                         ("ties/mergekit/model_scope", "ties", {"trim_scope": "model"}),
                         ("magnitude_prune/fusion_bench", "magnitude_prune", {"flavor": "fusion_bench"})]:
    masks = [whole_model_masks(wm, i, PMW[i]["density"]) for i in range(3)]
    entries = []
    for n, b, ms in wm:
        exp, _ = pipeline(method, g, PMW, b, ms, model_masks=[masks[i][n] for i in range(3)])
        e = tensor_entry(n, b, ms, exp)
        e["kept"] = [int(masks[i][n].sum().item()) for i in range(3)]
        entries.append(e)
    add(cname, method, g, PMW, entries)

# linear
add("linear/mergekit", "linear", {}, [{"weight": 1.0}, {"weight": 0.7}, {"weight": 1.3}],
    [tensor_entry("w", base, models, linear(models, [{"weight": 1.0}, {"weight": 0.7}, {"weight": 1.3}]))])
add("linear/mergekit/no_normalize", "linear", {"normalize": False}, [{"weight": 0.5}, {"weight": 0.25}, {"weight": 0.25}],
    [tensor_entry("w", base, models, linear(models, [{"weight": 0.5}, {"weight": 0.25}, {"weight": 0.25}], False))])

# slerp
add("slerp/mergekit", "slerp", {"t": 0.3}, [{}], [tensor_entry("w", base, [models[0]], slerp(0.3, base, models[0]))])
near = base * 1.0001 + 1e-6 * rnd(6, 8)
add("slerp/mergekit/lerp_fallback", "slerp", {"t": 0.6}, [{}], [tensor_entry("w", base, [near], slerp(0.6, base, near))])

# model_stock
add("model_stock/mergekit", "model_stock", {}, [{}, {}, {}], [tensor_entry("w", base, models, model_stock(base, models))])

# SVD methods
b58 = rnd(5, 8)
ms58 = [b58 + 0.5 * rnd(5, 8) for _ in range(3)]
b1 = rnd(8)
ms1 = [b1 + 0.5 * rnd(8) for _ in range(3)]
PS = [{"weight": 1.0}, {"weight": 0.8}, {"weight": 1.2}]
for meth, fn in [("tsv", tsv), ("iso_c", iso_c)]:
    add(f"{meth}/default", meth, {}, PS, [
        tensor_entry("model.layers.0.self_attn.q_proj.weight", base, models, fn("model.layers.0.self_attn.q_proj.weight", base, models, PS)),
        tensor_entry("model.layers.0.mlp.down_proj.weight", b58, ms58, fn("model.layers.0.mlp.down_proj.weight", b58, ms58, PS)),
        tensor_entry("model.norm.weight", b1, ms1, fn("model.norm.weight", b1, ms1, PS)),
        tensor_entry("model.embed_tokens.weight", b58, ms58, fn("model.embed_tokens.weight", b58, ms58, PS)),
    ])
    add(f"{meth}/lambda", meth, {"lambda": 0.7}, PS, [
        tensor_entry("model.layers.0.self_attn.q_proj.weight", base, models, fn("model.layers.0.self_attn.q_proj.weight", base, models, PS, 0.7))])

# ---------------------------------------------------------------- mergekit's newer methods (numpy, float64, written from the formulas)
import numpy as np


def N(t):
    return t.numpy().astype(np.float64)


def T_(a):
    return torch.tensor(np.asarray(a, dtype=np.float64))


def np_nuslerp(t, v0, v1, flatten=True, row_wise=False):
    shape = v0.shape
    if flatten:
        a, b = v0.reshape(1, -1), v1.reshape(1, -1)
    elif row_wise and v0.ndim > 1:
        a, b = np.swapaxes(v0, 0, -1), np.swapaxes(v1, 0, -1)
    else:
        a, b = v0, v1
    out = np.empty_like(a)
    A, B = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
    O = out.reshape(-1, a.shape[-1])
    for r in range(A.shape[0]):
        x, y = A[r], B[r]
        ux = x / max(np.linalg.norm(x), 1e-7)
        uy = y / max(np.linalg.norm(y), 1e-7)
        c = min(1.0, max(-1.0, float(np.dot(ux, uy))))
        th = math.acos(c)
        st = math.sin(th)
        if abs(st) < 1e-8:
            O[r] = (1 - t) * x + t * y
        else:
            O[r] = (math.sin((1 - t) * th) * x + math.sin(t * th) * y) / st
    if not flatten and row_wise and v0.ndim > 1:
        out = np.swapaxes(out, 0, -1)
    return out.reshape(shape)


def nuslerp_ref(base, models, pm, g):
    w0, w1 = pm[0]["weight"], pm[1]["weight"]
    t = 0.5 if abs(w0 + w1) < 1e-6 else w1 / (w0 + w1)
    fl, rw = g.get("nuslerp_flatten", True), g.get("nuslerp_row_wise", False)
    if base is None:
        return np_nuslerp(t, models[0], models[1], fl, rw)
    return base + np_nuslerp(t, models[0] - base, models[1] - base, fl, rw)


def multislerp_ref(base, models, pm, g):
    eps = g.get("eps", 1e-8)
    w = np.array([p["weight"] for p in pm], dtype=np.float64)
    if g.get("normalize_weights", True):
        w = w / w.sum()
    vs = [(m - base if base is not None else m).reshape(-1) for m in models]
    norms = np.array([np.linalg.norm(v) for v in vs])
    units = [v / (n + eps) for v, n in zip(vs, norms)]
    mean = sum(wi * u for wi, u in zip(w, units))
    mean = mean / np.linalg.norm(mean)
    tang = sum(wi * (u - np.dot(u, mean) * mean) for wi, u in zip(w, units))
    tn = np.linalg.norm(tang) + eps
    res = (mean * math.cos(tn) + tang * (math.sin(tn) / tn)) * float(np.dot(norms, w))
    res = res.reshape(models[0].shape)
    return res + base if base is not None else res


def karcher_ref(models, g):
    max_iter, tol = int(g.get("max_iter", 10)), g.get("tol", 1e-5)
    vs = [m.reshape(-1) for m in models]
    norms = [np.linalg.norm(v) for v in vs]
    valid = [i for i, n in enumerate(norms) if n > tol]
    a = 1.0 / len(valid)
    units = [vs[i] / norms[i] for i in valid]
    u = sum(a * x for x in units)
    u = u / np.linalg.norm(u)
    for _ in range(max_iter):
        T = np.zeros_like(u)
        for x in units:
            d = min(1.0, max(-1.0, float(np.dot(u, x))))
            th = math.acos(d)
            if th < tol:
                continue
            T += a * (th / math.sin(th)) * (x - d * u)
        nt = np.linalg.norm(T)
        if nt < tol:
            break
        u = math.cos(nt) * u + math.sin(nt) * (T / nt)
        u = u / np.linalg.norm(u)
    return (sum(norms) / len(models) * u).reshape(models[0].shape)


def nearswap_ref(base, other, t):
    with np.errstate(divide="ignore", invalid="ignore"):
        w = t / np.abs(base - other)
    w = np.nan_to_num(w, nan=1.0, posinf=1.0, neginf=1.0)
    w = np.clip(w, 0.0, 1.0)
    return w * other + (1 - w) * base


def sce_ref(base, models, g):
    ds = np.stack([m - base for m in models])
    topk = g.get("select_topk", 1.0)
    if topk < 1:
        var = ds.var(axis=0)
        flat = np.abs(var.reshape(-1))
        k = int(np.count_nonzero(var) * topk)
        order = sorted(range(flat.size), key=lambda i: (-flat[i], i))
        mask = np.zeros(flat.size)
        mask[order[:k]] = 1.0
        ds = ds * mask.reshape(var.shape)[None]
    e = np.array([np.mean(d ** 2) for d in ds])
    w = np.full(len(models), 1.0 / len(models)) if e.sum() < 1e-6 else e / e.sum()
    wd = ds * w.reshape(-1, *([1] * base.ndim))
    elected = np.where(wd.sum(0) >= 0, 1.0, -1.0)
    agree = (np.sign(wd) == elected).astype(np.float64)
    mixed = (wd * agree).sum(0)
    div = (w.reshape(-1, *([1] * base.ndim)) * agree).sum(0)
    div[div == 0] = 1.0
    return base + g.get("lambda", 1.0) * mixed / div


def softmax(x):
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def arcee_ref(base, other):
    delta = other - base
    p = softmax(other) + 1e-8
    q = softmax(base) + 1e-8
    kl = np.sum(p * np.log(p / q), axis=-1)
    imp = np.abs(delta) * np.expand_dims(kl, -1)
    srt = np.sort(imp.reshape(-1))
    n = srt.size
    med = srt[(n - 1) // 2]
    q1, q3 = np.quantile(srt, 0.25), np.quantile(srt, 0.75)  # numpy's default is linear interpolation
    thr = med + 1.5 * (q3 - q1)
    return base + delta * (imp >= thr)


def ram_ref(base, models, eps):
    ds = [m - base for m in models]
    act = [(np.abs(d) > eps).astype(np.float64) for d in ds]
    cnt = np.maximum(sum(act), 1.0)
    return base + sum(a * d for a, d in zip(act, ds)) / cnt


def ramplus_ref(base, models, r, alpha, eps):
    """mergekit's ramplus_tl, from its formula: per model lambda = 1 + r * clip(shared / max(unique, eps), 0, alpha)."""
    ds = [m - base for m in models]
    act = [np.abs(d) > eps for d in ds]
    cnt = sum(a.astype(np.int64) for a in act)
    uniq, over = cnt == 1, cnt > 1
    out = base.copy()
    for a, d in zip(act, ds):
        rho = np.count_nonzero(a & over) / max(np.count_nonzero(a & uniq), eps)
        lam = 1 + r * min(max(rho, 0.0), alpha)
        out = out + d * a * (uniq * lam + over / np.maximum(cnt, 1))
    return out


def model_stock_rows(base, models):
    b = base[None] if base.ndim == 1 else base
    ws = [m[None] if m.ndim == 1 else m for m in models]
    offs = [w - b for w in ws]
    cs = []
    for i in range(len(offs)):
        for j in range(i + 1, len(offs)):
            num = (offs[i] * offs[j]).sum(-1)
            den = np.maximum(np.linalg.norm(offs[i], axis=-1) * np.linalg.norm(offs[j], axis=-1), 1e-6)
            cs.append(np.clip(num / den, -1, 1))
    c = np.mean(cs, axis=0)[..., None]
    n = len(ws)
    t = n * c / (1 + (n - 1) * c)
    return (t * (sum(ws) / n) + (1 - t) * b).reshape(base.shape)


nb, nms = N(base), [N(m) for m in models]
sparse_models = []
for i in range(3):  # RL-style sparse updates: about a third of the entries change per model
    d = 0.5 * rnd(6, 8)
    d[torch.rand(6, 8) < 0.66] = 0.0
    sparse_models.append(base + d)
nsm = [N(m) for m in sparse_models]
PW2 = [{"weight": 0.6}, {"weight": 1.4}]
PW3 = [{"weight": 1.0}, {"weight": 0.5}, {"weight": 2.0}]
TN = "model.layers.0.mlp.up_proj.weight"


def addn(name, method, g, pm, b, ms, expected, tname=TN):
    add(name, method, g, pm, [tensor_entry(tname, T_(b if b is not None else ms[0]), [T_(m) for m in ms], T_(expected))])


addn("nuslerp/task_vectors", "nuslerp", {}, PW2, nb, nms[:2], nuslerp_ref(nb, nms[:2], PW2, {}))
addn("nuslerp/row_wise", "nuslerp", {"nuslerp_flatten": False, "nuslerp_row_wise": True}, PW2, nb, nms[:2],
     nuslerp_ref(nb, nms[:2], PW2, {"nuslerp_flatten": False, "nuslerp_row_wise": True}))
addn("nuslerp/last_dim", "nuslerp", {"nuslerp_flatten": False}, PW2, nb, nms[:2], nuslerp_ref(nb, nms[:2], PW2, {"nuslerp_flatten": False}))
addn("multislerp/task_vectors", "multislerp", {}, PW3, nb, nms, multislerp_ref(nb, nms, PW3, {}))
addn("karcher/default", "karcher", {}, [{}, {}, {}], nms[0], nms, karcher_ref(nms, {}))
addn("karcher/few_iterations", "karcher", {"max_iter": 2}, [{}, {}, {}], nms[0], nms, karcher_ref(nms, {"max_iter": 2}))
addn("nearswap/t", "nearswap", {"t": 0.3}, [{}], nb, nms[:1], nearswap_ref(nb, nms[0], 0.3))
addn("sce/default", "sce", {}, [{}, {}, {}], nb, nms, sce_ref(nb, nms, {}))
addn("sce/select_topk", "sce", {"select_topk": 0.4}, [{}, {}, {}], nb, nms, sce_ref(nb, nms, {"select_topk": 0.4}))
addn("arcee_fusion/default", "arcee_fusion", {}, [{}], nb, nms[:1], arcee_ref(nb, nms[0]))
b1n = N(b1)
add("arcee_fusion/vector", "arcee_fusion", {}, [{}], [tensor_entry("model.norm.weight", b1, [ms1[0]], T_(arcee_ref(b1n, N(ms1[0]))))])
addn("ram/sparse", "ram", {}, [{}, {}, {}], nb, nsm, ram_ref(nb, nsm, 1e-5))
addn("ram/epsilon", "ram", {"epsilon": 0.2}, [{}, {}, {}], nb, nms, ram_ref(nb, nms, 0.2))
addn("ramplus_tl/sparse", "ramplus_tl", {}, [{}, {}, {}], nb, nsm, ramplus_ref(nb, nsm, 0.1, 0.2, 1e-5))
addn("ramplus_tl/r_alpha", "ramplus_tl", {"r": 0.5, "alpha": 2.0}, [{}, {}, {}], nb, nsm, ramplus_ref(nb, nsm, 0.5, 2.0, 1e-5))
add("ramplus_tl/vector", "ramplus_tl", {"r": 1.0, "alpha": 5.0, "epsilon": 0.05}, [{}, {}],
    [tensor_entry("model.norm.weight", b1, ms1[:2], T_(ramplus_ref(b1n, [N(m) for m in ms1[:2]], 1.0, 5.0, 0.05)))])
addn("model_stock/filter_wise", "model_stock", {"filter_wise": True}, [{}, {}, {}], nb, nms, model_stock_rows(nb, nms))
add("model_stock/filter_wise_vector", "model_stock", {"filter_wise": True}, [{}, {}, {}],
    [tensor_entry("model.norm.weight", b1, ms1, T_(model_stock_rows(b1n, [N(m) for m in ms1])))])
add("passthrough/scale", "passthrough", {}, [{"scale": 0.5}], [tensor_entry(TN, base, [models[0]], 0.5 * models[0])])

# ---------------------------------------------------------------- lrp, core_space, cabs (numpy, float64, from the formulas in docs/merging.md)
rng = np.random.default_rng(20261202)


def lrp_ref(base, models, weights, density):
    b = np.zeros_like(models[0]) if base is None else base
    total = sum(weights)
    out = np.zeros_like(b)
    for m, w in zip(models, weights):
        d = (m - b).reshape(-1)
        k = int(density * d.size)
        keep = np.zeros(d.size)
        keep[sorted(range(d.size), key=lambda i: (-abs(d[i]), i))[:k]] = 1.0
        out = out + (w / total) * (d * keep).reshape(b.shape)
    return b + out


def core_space_ref(name, base, models):
    inputs = ([] if base is None else [base]) + list(models)
    if len(inputs) == 1:
        return inputs[0]
    b, others = inputs[0], inputs[1:]
    if not any(s in name for s in ("lora_A", "lora_B", "lora_", "adapter")) or b.ndim != 2:
        return sum(inputs) / len(inputs)
    Bs, As = [], []
    for m in others:
        d = m - b
        if "lora_A" in name:
            Bs.append(np.eye(d.shape[0])); As.append(d)
        elif "lora_B" in name:
            Bs.append(d); As.append(np.eye(d.shape[1]))
        else:
            k = max(1, min(16, min(d.shape) // 4))
            u, sv, vt = np.linalg.svd(d, full_matrices=False)
            Bs.append(u[:, :k]); As.append(np.diag(sv[:k]) @ vt[:k])
    ub = np.linalg.svd(np.concatenate(Bs, axis=1), full_matrices=False)[0]
    v = np.linalg.svd(np.concatenate(As, axis=0), full_matrices=False)[2].T
    c = min(ub.shape[1], v.shape[1])
    pu, pv = ub[:, :c] @ ub[:, :c].T, v[:, :c] @ v[:, :c].T  # projections: independent of the SVD's signs
    return b + pu @ (sum(B @ A for B, A in zip(Bs, As)) / len(Bs)) @ pv


def cabs_ref(base, models, names, pm, g, base_name=None):
    order = g.get("pruning_order")
    idx = [names.index(x) for x in order if x != base_name] if order else sorted(range(len(models)), key=lambda i: names[i])
    out = base.copy().reshape(-1)
    taken = np.zeros(base.size, dtype=bool)
    for i in idx:
        p = pm[i]
        if "n_val" in p:
            n, m = int(p["n_val"]), int(p["m_val"])
        elif "default_n_val" in g:
            n, m = int(g["default_n_val"]), int(g["default_m_val"])
        else:
            n, m = 1, 4
        cand = np.where(taken, 0.0, (models[i] - base).reshape(-1))
        keep = np.zeros(base.size, dtype=bool)
        for start in range(0, base.size, m):  # a short last block is the zero-padded one: padding never outranks real entries here
            block = list(range(start, min(start + m, base.size)))
            ranked_block = sorted(block, key=lambda j: (-abs(cand[j]), j))
            for j in ranked_block[:n]:
                keep[j] = True
        out = out + p.get("weight", 1.0) * cand * keep
        taken |= keep
    return out.reshape(base.shape)


def named_case(name, method, g, pm, tensors, names=None, base_name=None, no_base=False):
    add(name, method, g, pm, tensors)
    if names is not None:
        cases[-1]["names"] = names
    if base_name is not None:
        cases[-1]["base_name"] = base_name
    if no_base:
        cases[-1]["no_base"] = True


def R(*shape):
    return rng.standard_normal(shape)


lb = R(6, 8)
lms = [lb + 0.5 * R(6, 8) for _ in range(3)]
LW = [{"weight": 1.0}, {"weight": 0.5}, {"weight": 2.0}]
named_case("lrp/default", "lrp", {}, LW, [tensor_entry(TN, T_(lb), [T_(m) for m in lms], T_(lrp_ref(lb, lms, [1.0, 0.5, 2.0], 0.7)))])
named_case("lrp/density", "lrp", {"density": 0.3}, LW, [tensor_entry(TN, T_(lb), [T_(m) for m in lms], T_(lrp_ref(lb, lms, [1.0, 0.5, 2.0], 0.3)))])
named_case("lrp/no_base", "lrp", {"density": 0.5}, LW[:2], [tensor_entry(TN, T_(lms[2]), [T_(m) for m in lms[:2]], T_(lrp_ref(None, lms[:2], [1.0, 0.5], 0.5)))], no_base=True)

cs_tensors = []
for tname, shape in [("model.layers.0.self_attn.q_proj.lora_A.weight", (4, 8)), ("model.layers.0.self_attn.q_proj.lora_B.weight", (8, 4)),
                     ("model.layers.0.adapter.up.weight", (8, 12)), ("model.layers.0.mlp.up_proj.weight", (6, 8)), ("model.layers.0.lora_magnitude", (8,))]:
    cb = R(*shape)
    cms = [cb + 0.5 * R(*shape) for _ in range(3)]
    cs_tensors.append(tensor_entry(tname, T_(cb), [T_(m) for m in cms], T_(core_space_ref(tname, cb, cms))))
named_case("core_space/tensor_kinds", "core_space", {}, [{}, {}, {}], cs_tensors)
cb = R(8, 12)
cms = [cb + 0.5 * R(8, 12) for _ in range(3)]
named_case("core_space/no_base", "core_space", {}, [{}, {}, {}],
           [tensor_entry("model.layers.1.adapter.down.weight", T_(cms[0]), [T_(m) for m in cms], T_(core_space_ref("adapter", None, cms)))], no_base=True)

cb6 = R(6, 8)
cbm = [cb6 + 0.5 * R(6, 8) for _ in range(3)]
CN = ["/m/zeta", "/m/alpha", "/m/mid"]
CPM = [{"weight": 0.6, "n_val": 8, "m_val": 32}, {"weight": 0.4, "n_val": 8, "m_val": 32}, {"weight": 1.5, "n_val": 8, "m_val": 32}]
named_case("cabs/per_model_sorted", "cabs", {}, CPM, [tensor_entry(TN, T_(cb6), [T_(m) for m in cbm], T_(cabs_ref(cb6, cbm, CN, CPM, {})))], names=CN)
G = {"pruning_order": ["/m/mid", "/m/base", "/m/zeta", "/m/alpha"]}
PM24 = [{"weight": 1.0, "n_val": 2, "m_val": 4}, {"weight": 0.5, "n_val": 1, "m_val": 4}, {"weight": 2.0, "n_val": 2, "m_val": 4}]
named_case("cabs/pruning_order", "cabs", G, PM24, [tensor_entry(TN, T_(cb6), [T_(m) for m in cbm], T_(cabs_ref(cb6, cbm, CN, PM24, G, "/m/base")))],
           names=CN, base_name="/m/base")
GD = {"default_n_val": 3, "default_m_val": 5}
PMD = [{"weight": 1.0}, {"weight": 0.7, "n_val": 1, "m_val": 3}, {"weight": 1.2}]
named_case("cabs/defaults", "cabs", GD, PMD, [tensor_entry(TN, T_(cb6), [T_(m) for m in cbm], T_(cabs_ref(cb6, cbm, CN, PMD, GD)))], names=CN)
named_case("cabs/fallback_1_4", "cabs", {}, [{}, {}], [tensor_entry(TN, T_(cb6), [T_(m) for m in cbm[:2]], T_(cabs_ref(cb6, cbm[:2], CN[:2], [{}, {}], {})))], names=CN[:2])

# encoder_decoder_weighted (mergekit): per-model encoder/decoder/cross weights, each list normalised to sum 1
# (uniform when it sums to 0); a name with "decoder" and "encoder_attn" takes cross, with "decoder" only decoder,
# anything else encoder; cross_weight defaults to (encoder + decoder) / 2. Written in numpy from that rule.
def edw_ref(name, models, pm):
    def norm(ws):
        total = sum(ws)
        return [1.0 / len(ws)] * len(ws) if total == 0 else [w / total for w in ws]
    enc = norm([p["encoder_weight"] for p in pm])
    dec = norm([p["decoder_weight"] for p in pm])
    cross = norm([p.get("cross_weight", (p["encoder_weight"] + p["decoder_weight"]) / 2) for p in pm])
    ws = (cross if "encoder_attn" in name else dec) if "decoder" in name else enc
    out = models[0] * ws[0]
    for m, w in zip(models[1:], ws[1:]):
        out = out + m * w
    return out


EDW_NAMES = ["model.encoder.layers.0.fc1.weight", "model.decoder.layers.1.self_attn.q_proj.weight",
             "model.decoder.layers.0.encoder_attn.k_proj.weight", "proj_out.weight", "model.decoder.embed_tokens.weight"]
edw_models = {n: [R(4, 6) for _ in range(2)] for n in EDW_NAMES}
for label, pm in [("whisper_recipe", [{"encoder_weight": 0.8, "decoder_weight": 0.3}, {"encoder_weight": 0.2, "decoder_weight": 0.7}]),
                  ("cross_weight", [{"encoder_weight": 1.0, "decoder_weight": 2.0, "cross_weight": 0.25}, {"encoder_weight": 3.0, "decoder_weight": 1.0, "cross_weight": 0.75}]),
                  ("zero_sum", [{"encoder_weight": 0.5, "decoder_weight": 1.0}, {"encoder_weight": -0.5, "decoder_weight": -1.0}])]:
    named_case(f"encoder_decoder_weighted/{label}", "encoder_decoder_weighted", {}, pm,
               [tensor_entry(n, T_(edw_models[n][0]), [T_(m) for m in edw_models[n]], T_(edw_ref(n, edw_models[n], pm))) for n in EDW_NAMES],
               no_base=True)

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases.json")
with open(out, "w") as f:
    json.dump({"generator": "tests/Golden/merging/generate.py", "torch": torch.__version__, "cases": cases}, f, separators=(",", ":"))
print(f"wrote {len(cases)} cases to {out} ({os.path.getsize(out)} bytes)")
