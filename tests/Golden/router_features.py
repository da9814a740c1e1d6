#!/usr/bin/env python3
"""Golden router features: mean-pooled hidden states of the llama_gqa checkpoint from generate.py's independent
float64 forward, for each feature source (token embeddings, the residual stream after layer 1, the final norm).

Run from the repository root:  /usr/bin/python3 tests/Golden/router_features.py
Writes tests/Golden/data/router_features.json. The reference forward ends in the final norm and the output
projection; to read the residual stream after layer k it runs with num_hidden_layers = k, the final norm made the
identity and an identity output projection, so its "logits" are that stream.
"""
import json
import os

import torch

import generate as g

IDENTITY = object()
_rmsnorm = g.rmsnorm
g.rmsnorm = lambda x, w, eps, offset=False: x if w is IDENTITY else _rmsnorm(x, w, eps, offset)

PROMPTS = [[5], [3, 9], [1, 7, 7, 2, 40, 11], [12, 60, 8, 8]]


def features(cfg, W, ids, layers):
    if layers is None:  # the full pass to the final norm: identity head only
        cfg2, W2 = dict(cfg), dict(W)
    else:
        cfg2, W2 = dict(cfg, num_hidden_layers=layers), dict(W)
        W2["model.norm.weight"] = IDENTITY
    W2["lm_head.weight"] = torch.eye(cfg["hidden_size"], dtype=torch.float64)
    return g.forward(dict(cfg2, tie_word_embeddings=False), W2, ids).mean(0)


def main():
    cfg, W = g.load_model_dir(os.path.join(g.DATA, "llama_gqa"))
    out = {"model": "llama_gqa", "prompts": PROMPTS, "features": {}}
    for name, layers in [("embeddings", 0), ("layer-1", 1), ("final", None)]:
        out["features"][name] = [[round(float(v), 9) for v in features(cfg, W, p, layers)] for p in PROMPTS]
    with open(os.path.join(g.DATA, "router_features.json"), "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
