"""Goldens for mergekit's tokenizer merge: tokenizer_source base | union | model:NAME and the tokenizer: block.

Writes into this folder (deterministic, fixed seed):
  base/, a/, b/      tiny LlamaForCausalLM checkpoints (hidden 8, 1 layer) with tiny byte-level BPE tokenizer.json
                     files whose vocabularies differ: other ids for the same tokens, tokens only some have, added
                     tokens, padding rows past the vocabulary (a), a token past config vocab_size (b, stripped)
  cases.json         per case: the recipe (with {base}, {a}, {b} for the folders), the output vocabulary (token per
                     id), the embedding rows, the merged embed_tokens and lm_head, and token ids of a few texts
                     under the merged tokenizer

The reference is written in numpy from the rules of mergekit/tokenizer/build.py (build_union_tokenizer,
get_stripped_tokenizer, the permutations) and mergekit/tokenizer/embed.py (PermutedEmbeddings and its default
embeddings), and from the two merge formulas used (linear, task_arithmetic); the encoder is a small BPE with
added tokens split first (leftmost-longest). Only the safetensors writer comes from ../generate.py (via torch).
Run: /usr/bin/python3 tests/Golden/tokenizer_merge/generate.py
"""
import json
import os
import shutil
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from generate import write_safetensors  # noqa: E402

HIDDEN, INTER, HEADS = 8, 12, 2

ENDOFTEXT = {"content": "<|endoftext|>", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
IM_START = {"content": "<|im_start|>", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
PAD = {"content": "<|pad|>", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": False}

# name: (vocab token -> id, added tokens [(id, entry)], merges, config vocab_size = embedding rows)
MODELS = {
    "base": ({"<|endoftext|>": 0, "l": 1, "o": 2, "w": 3, "e": 4, "r": 5, "\u0120": 6, "s": 7, "t": 8, "lo": 9, "low": 10,
              "er": 11, "\u0120low": 12, "lower": 13},
             [(0, ENDOFTEXT)], ["l o", "lo w", "e r", "\u0120 low", "low er"], 14),
    "a": ({"<|endoftext|>": 0, "t": 1, "s": 2, "r": 3, "e": 4, "w": 5, "o": 6, "l": 7, "\u0120": 8, "lo": 9, "low": 10,
           "er": 11, "st": 12, "n": 13, "<|im_start|>": 14},
          [(0, ENDOFTEXT), (14, IM_START)], ["l o", "lo w", "e r", "s t"], 17),  # two padding rows
    "b": ({"<|endoftext|>": 0, "l": 1, "o": 2, "w": 3, "e": 4, "r": 5, "s": 6, "t": 7, "n": 8, "i": 9, "lo": 10, "low": 11,
           "er": 12, "st": 13, "ne": 14, "<|pad|>": 15, "z": 16, "zz": 17},
          [(0, ENDOFTEXT), (15, PAD)], ["l o", "lo w", "e r", "s t", "n e", "z z"], 16),  # "z", "zz" are past vocab_size
}


def tokenizer_json(vocab, added, merges):
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [dict({"id": i}, **e) for i, e in added],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "", "end_of_word_suffix": "",
                  "fuse_unk": False, "byte_fallback": False, "vocab": vocab, "merges": merges},
    }


def write_model(name, rng):
    vocab, added, merges, rows = MODELS[name]
    d = os.path.join(HERE, name)
    os.makedirs(d)
    hd = HIDDEN // HEADS
    t = {
        "model.embed_tokens.weight": rng.standard_normal((rows, HIDDEN)),
        "model.layers.0.input_layernorm.weight": 1 + 0.1 * rng.standard_normal(HIDDEN),
        "model.layers.0.self_attn.q_proj.weight": 0.3 * rng.standard_normal((HEADS * hd, HIDDEN)),
        "model.layers.0.self_attn.k_proj.weight": 0.3 * rng.standard_normal((HEADS * hd, HIDDEN)),
        "model.layers.0.self_attn.v_proj.weight": 0.3 * rng.standard_normal((HEADS * hd, HIDDEN)),
        "model.layers.0.self_attn.o_proj.weight": 0.3 * rng.standard_normal((HIDDEN, HEADS * hd)),
        "model.layers.0.post_attention_layernorm.weight": 1 + 0.1 * rng.standard_normal(HIDDEN),
        "model.layers.0.mlp.gate_proj.weight": 0.3 * rng.standard_normal((INTER, HIDDEN)),
        "model.layers.0.mlp.up_proj.weight": 0.3 * rng.standard_normal((INTER, HIDDEN)),
        "model.layers.0.mlp.down_proj.weight": 0.3 * rng.standard_normal((HIDDEN, INTER)),
        "model.norm.weight": 1 + 0.1 * rng.standard_normal(HIDDEN),
        "lm_head.weight": rng.standard_normal((rows, HIDDEN)),
    }
    t = {k: v.astype(np.float32) for k, v in t.items()}
    write_safetensors(os.path.join(d, "model.safetensors"), [(k, torch.from_numpy(v)) for k, v in sorted(t.items())], "F32")
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": HIDDEN, "intermediate_size": INTER,
              "num_hidden_layers": 1, "num_attention_heads": HEADS, "num_key_value_heads": HEADS, "vocab_size": rows,
              "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "max_position_embeddings": 64, "tie_word_embeddings": False,
              "hidden_act": "silu", "torch_dtype": "float32", "bos_token_id": 0, "eos_token_id": 0}
    json.dump(config, open(os.path.join(d, "config.json"), "w"), indent=2)
    json.dump(tokenizer_json(vocab, added, merges), open(os.path.join(d, "tokenizer.json"), "w"), indent=2, ensure_ascii=False)
    decoder = {str(i): {k: v for k, v in e.items()} for i, e in added}
    json.dump({"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "added_tokens_decoder": decoder},
              open(os.path.join(d, "tokenizer_config.json"), "w"), indent=2)
    return t


# ------------------------------------------------------------------------------------------------
# mergekit's tokenizer merge, from its rules
# ------------------------------------------------------------------------------------------------

def stripped(name):
    """get_vocab() with ids >= config vocab_size dropped; the added tokens likewise."""
    vocab, added, _, rows = MODELS[name]
    v = {tok: i for tok, i in vocab.items() if i < rows}
    a = [(i, e) for i, e in added if i < rows]
    return v, a


def output_vocabulary(source, models, base, tokens_block):
    """Returns (token -> id of the output vocabulary, the folder its tokenizer files come from)."""
    tok_base = base or models[0]
    if source == "base" or source == "union":
        out = dict(stripped(tok_base)[0])
        folder = tok_base
    else:
        out = dict(stripped(source)[0])
        folder = source
    if source == "union":
        order = [tok_base] + [m for m in models if m != tok_base]
        normal, added = [], {}
        for m in order:
            v, a = stripped(m)
            contents = {e["content"] for _, e in a}
            for tok, i in sorted(v.items(), key=lambda kv: kv[1]):
                if tok not in contents and tok not in normal:
                    normal.append(tok)
            for i, e in a:
                added.setdefault(e["content"], e)
        for tok in normal:  # add_tokens(str) for ordinary tokens the base lacks
            if tok not in added and tok not in out:
                out[tok] = len(out)
        for content in added:  # add_tokens(AddedToken): an existing token keeps its id
            if content not in out:
                out[content] = len(out)
    for tok in tokens_block:
        if tok not in out:
            out[tok] = len(out)
    return out, folder


def permuted(name, tensor, vocab_out, models_here, base, tensors, tokens_block, pad_to):
    """PermutedEmbeddings for one input of one tensor; tensors: {model: original rows}."""
    perms = {m: {i: stripped(m)[0].get(tok, -1) for tok, i in vocab_out.items()} for m in models_here}
    n = len(vocab_out)
    out = np.zeros((n, tensor.shape[1]))
    for tok, i in vocab_out.items():
        cfg = tokens_block.get(tok)
        if perms[name][i] >= 0 and not (cfg and cfg.get("force")):
            out[i] = tensors[name][perms[name][i]]
            continue
        if cfg is not None:
            src = cfg["source"]
            if isinstance(src, dict) and src["kind"] == "zero":
                row = np.zeros(tensor.shape[1])
            elif isinstance(src, dict):
                row = tensors[src["model"]][stripped(src["model"])[0][src["token"]]]
            else:
                row = tensors[src][perms[src][i]]
        else:
            have = [m for m in models_here if perms[m][i] >= 0]
            if len(have) == 1:
                row = tensors[have[0]][perms[have[0]][i]]
            elif len(have) == 0:
                row = np.zeros(tensor.shape[1])
            elif base is not None and perms[base][i] >= 0:
                row = tensors[base][perms[base][i]]
            else:
                row = sum(tensors[m][perms[m][i]] for m in have) / len(have)
        out[i] = row
    rows = n if not pad_to or n % pad_to == 0 else (n // pad_to + 1) * pad_to
    if rows > n:
        out = np.concatenate([out, np.tile(out.mean(axis=0), (rows - n, 1))])
    return out


def merge(method, weights, base, inputs):
    if method == "linear":
        return sum(w * inputs[m] for m, w in weights.items()) / sum(weights.values())
    if method == "task_arithmetic":
        return inputs[base] + sum(w * (inputs[m] - inputs[base]) for m, w in weights.items())
    if method == "nuslerp":  # two models, no base, flattened: t = w1 / (w0 + w1), slerp of the unnormalised vectors
        (m0, w0), (m1, w1) = weights.items()
        t = w1 / (w0 + w1)
        v0, v1 = inputs[m0].ravel(), inputs[m1].ravel()
        u0, u1 = v0 / max(np.linalg.norm(v0), 1e-7), v1 / max(np.linalg.norm(v1), 1e-7)
        omega = np.arccos(np.clip(u0 @ u1, -1, 1))
        return ((np.sin((1 - t) * omega) * v0 + np.sin(t * omega) * v1) / np.sin(omega)).reshape(inputs[m0].shape)
    raise ValueError(method)


# ------------------------------------------------------------------------------------------------
# the merged tokenizer's ids: added tokens split first (leftmost-longest), BPE by merge rank on the rest
# ------------------------------------------------------------------------------------------------

def encode(text, vocab_out, added_contents, merges):
    ranks = {tuple(m.split(" ")): r for r, m in enumerate(merges)}
    ids, i, plain = [], 0, ""
    longest = sorted(added_contents, key=len, reverse=True)

    def bpe(piece):
        parts = list(piece.replace(" ", "\u0120"))
        while True:
            pairs = [(ranks.get((parts[k], parts[k + 1]), None), k) for k in range(len(parts) - 1)]
            pairs = [p for p in pairs if p[0] is not None]
            if not pairs:
                return [vocab_out[p] for p in parts]
            _, k = min(pairs)
            parts = parts[:k] + [parts[k] + parts[k + 1]] + parts[k + 2:]

    while i < len(text):
        hit = next((c for c in longest if text.startswith(c, i)), None)
        if hit is None:
            plain += text[i]
            i += 1
            continue
        if plain:
            ids += bpe(plain)
            plain = ""
        ids.append(vocab_out[hit])
        i += len(hit)
    if plain:
        ids += bpe(plain)
    return ids


CASES = [
    {
        "name": "block_union_linear",
        "yaml": "merge_method: linear\nbase_model: {base}\nmodels:\n  - model: {base}\n    parameters: {weight: 0.5}\n"
                "  - model: {a}\n    parameters: {weight: 0.3}\n  - model: {b}\n    parameters: {weight: 0.2}\n"
                "tokenizer:\n  source: union\n  pad_to_multiple_of: 8\n  tokens:\n"
                "    \"<|im_start|>\":\n      source: {kind: model_token, model: {a}, token: \"<|endoftext|>\"}\n"
                "    er:\n      source: {b}\n      force: true\n    \"<|tool|>\":\n      source: {kind: zero}\n",
        "method": "linear", "source": "union", "base": "base", "models": ["base", "a", "b"],
        "weights": {"base": 0.5, "a": 0.3, "b": 0.2}, "pad_to": 8,
        "tokens": {"<|im_start|>": {"source": {"kind": "model_token", "model": "a", "token": "<|endoftext|>"}},
                   "er": {"source": "b", "force": True}, "<|tool|>": {"source": {"kind": "zero"}}},
        "texts": ["lower", "lowst", "wine", "<|im_start|>ner<|tool|>", "slow<|pad|>"],
    },
    {
        "name": "union_task_arithmetic",
        "yaml": "merge_method: task_arithmetic\nbase_model: {base}\nmodels:\n  - model: {a}\n    parameters: {weight: 0.7}\n"
                "  - model: {b}\n    parameters: {weight: 0.4}\ntokenizer_source: union\n",
        "method": "task_arithmetic", "source": "union", "base": "base", "models": ["a", "b"],
        "weights": {"a": 0.7, "b": 0.4}, "pad_to": None, "tokens": {},
        "texts": ["lower", "lowst", "wine"],
    },
    {
        "name": "model_b_linear",
        "yaml": "merge_method: linear\nmodels:\n  - model: {a}\n    parameters: {weight: 1.0}\n  - model: {b}\n    parameters: {weight: 3.0}\n"
                "tokenizer_source: model:{b}\n",
        "method": "linear", "source": "b", "base": None, "models": ["a", "b"],
        "weights": {"a": 1.0, "b": 3.0}, "pad_to": None, "tokens": {},
        "texts": ["lower", "slow"],
    },
    {
        # mergekit's examples/chipalign.yml with nuslerp's own weights (ChipAlign's geodesic/lambda are not nuslerp's)
        "name": "chipalign_style_nuslerp",
        "yaml": "models:\n  - model: {a}\n    parameters: {weight: 0.5}\n  - model: {b}\n    parameters: {weight: 0.5}\n"
                "merge_method: nuslerp\nparameters:\n  nuslerp_flatten: true\ntokenizer:\n  source: \"union\"\ndtype: float32\n",
        "method": "nuslerp", "source": "union", "base": None, "models": ["a", "b"],
        "weights": {"a": 0.5, "b": 0.5}, "pad_to": None, "tokens": {},
        "texts": ["lowst", "wine"],
    },
    {
        "name": "base_task_arithmetic",
        "yaml": "merge_method: task_arithmetic\nbase_model: {base}\nmodels:\n  - model: {a}\n    parameters: {weight: 0.5}\n"
                "  - model: {b}\n    parameters: {weight: 0.5}\ntokenizer_source: base\n",
        "method": "task_arithmetic", "source": "base", "base": "base", "models": ["a", "b"],
        "weights": {"a": 0.5, "b": 0.5}, "pad_to": None, "tokens": {},
        "texts": ["lower", "slow"],
    },
]


def main():
    for name in MODELS:
        shutil.rmtree(os.path.join(HERE, name), ignore_errors=True)
    rng = np.random.default_rng(15)
    weights = {name: write_model(name, rng) for name in MODELS}
    out_cases = []
    for case in CASES:
        models_here = list(dict.fromkeys(([case["base"]] if case["base"] else []) + case["models"]))
        vocab_out, folder = output_vocabulary(case["source"], case["models"], case["base"], case["tokens"])
        merged = {}
        for tensor in ["model.embed_tokens.weight", "lm_head.weight"]:
            originals = {m: weights[m][tensor].astype(np.float64) for m in models_here}
            inputs = {m: permuted(m, originals[m], vocab_out, models_here, case["base"], originals, case["tokens"], case["pad_to"])
                      for m in models_here}
            merged[tensor] = merge(case["method"], case["weights"], case["base"], inputs)
        folder_vocab, folder_added, folder_merges, folder_rows = MODELS[folder]
        added_contents = {e["content"] for i, e in folder_added if i < folder_rows}
        added_contents |= {tok for tok, i in vocab_out.items() if tok not in stripped(folder)[0]}
        if case["source"] == "union":  # other models' added tokens the base has as ordinary tokens would be marked too (none here)
            pass
        merges = [m for m in folder_merges if all(p in stripped(folder)[0] for p in m.split(" "))]
        tokens_by_id = [None] * len(vocab_out)
        for tok, i in vocab_out.items():
            tokens_by_id[i] = tok
        out_cases.append({
            "name": case["name"], "yaml": case["yaml"], "tokens": tokens_by_id,
            "rows": int(merged["model.embed_tokens.weight"].shape[0]),
            "embed_tokens": merged["model.embed_tokens.weight"].tolist(),
            "lm_head": merged["lm_head.weight"].tolist(),
            "encodings": [{"text": t, "ids": encode(t, vocab_out, added_contents, merges)} for t in case["texts"]],
        })
    with open(os.path.join(HERE, "cases.json"), "w") as f:
        json.dump(out_cases, f, indent=1, ensure_ascii=False)
    for c in out_cases:
        print(c["name"], "vocab", len(c["tokens"]), "rows", c["rows"], [e["ids"] for e in c["encodings"]])


if __name__ == "__main__":
    main()
