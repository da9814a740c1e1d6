#!/usr/bin/env python3
"""The PyTorch side of the realistic-size benchmark: an eager, transformers-style Llama forward with a KV cache
(torch.cat per step, as DynamicCache does), optional unmerged LoRA computed as PEFT does (adapter weights in
float32, the input cast to them, the sum cast back), greedy decoding by argmax.

Driven by bench/Amalgam.Bench.Realistic over stdin/stdout, one JSON object per line:
  {"op": "load", "model": DIR, "adapter": DIR|null}        -> {"seconds": s, "bytes": n}
  {"op": "prefill", "batch": B, "tokens": T}                -> {"seconds": s}   (logits of the last position)
  {"op": "decode", "batch": B, "prompt": P, "new": N}       -> {"seconds": s}   (prefill P, then N greedy steps)
Start: /usr/bin/python3 llama_eager.py [--threads N]
"""
import argparse, json, math, mmap, os, struct, sys, time, warnings
import torch
import torch.nn.functional as F

DTYPES = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32}


def read_safetensors(path):
    """Every tensor of one file, copied out of the memory map (what safetensors' load_file does)."""
    with open(path, "rb") as fh:
        m = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        n = struct.unpack("<Q", m[:8])[0]
        header = json.loads(m[8:8 + n])
        header.pop("__metadata__", None)
        out = {}
        for name, info in header.items():
            b, e = info["data_offsets"]
            raw = torch.frombuffer(m, dtype=torch.uint8, count=e - b, offset=8 + n + b).clone() if e > b else torch.empty(0, dtype=torch.uint8)
            out[name] = raw.view(DTYPES[info["dtype"]]).reshape(info["shape"])
    return out


def read_folder(folder, stem):
    index = os.path.join(folder, stem + ".safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) else [stem + ".safetensors"]
    tensors, size = {}, 0
    for f in files:
        p = os.path.join(folder, f)
        size += os.path.getsize(p)
        tensors.update(read_safetensors(p))
    return tensors, size


class Llama:
    def __init__(self, folder, adapter):
        self.cfg = json.load(open(os.path.join(folder, "config.json")))
        self.w, self.bytes = read_folder(folder, "model")
        c = self.cfg
        self.layers = c["num_hidden_layers"]
        self.heads, self.kv = c["num_attention_heads"], c.get("num_key_value_heads", c["num_attention_heads"])
        self.hd = c["hidden_size"] // self.heads
        self.eps = c.get("rms_norm_eps", 1e-6)
        self.dtype = self.w["model.embed_tokens.weight"].dtype
        inv = 1.0 / (c.get("rope_theta", 10000.0) ** (torch.arange(0, self.hd, 2, dtype=torch.float32) / self.hd))
        self.inv_freq = inv
        self.lora = {}
        if adapter:
            acfg = json.load(open(os.path.join(adapter, "adapter_config.json")))
            scale = acfg["lora_alpha"] / acfg["r"]
            aw, _ = read_folder(adapter, "adapter_model")
            for name, t in aw.items():
                if name.endswith("lora_A.weight"):
                    module = name[len("base_model.model."):-len(".lora_A.weight")]
                    b = aw[name.replace("lora_A", "lora_B")]
                    self.lora[module] = (t.float(), b.float(), scale)  # PEFT's autocast_adapter_dtype: float32

    def linear(self, x, module):
        y = F.linear(x, self.w[module + ".weight"])
        if module in self.lora:
            a, b, s = self.lora[module]
            y = (y + F.linear(F.linear(x.to(a.dtype), a), b) * s).to(x.dtype)
        return y

    def norm(self, x, name):
        h = x.to(torch.float32)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.w[name] * h.to(x.dtype)

    def rope(self, positions):
        freqs = positions[:, :, None].float() * self.inv_freq[None, None, :]
        emb = torch.cat([freqs, freqs], dim=-1)
        return emb.cos().to(self.dtype)[:, None], emb.sin().to(self.dtype)[:, None]

    @staticmethod
    def rotate(x):
        h = x.shape[-1] // 2
        return torch.cat([-x[..., h:], x[..., :h]], dim=-1)

    def forward(self, ids, cache, past):
        b, t = ids.shape
        x = F.embedding(ids, self.w["model.embed_tokens.weight"])
        positions = torch.arange(past, past + t)[None].expand(b, t)
        cos, sin = self.rope(positions)
        mask = None
        if t > 1:
            mask = torch.full((t, past + t), torch.finfo(torch.float32).min).triu(past + 1)[None, None]
        for i in range(self.layers):
            p = f"model.layers.{i}."
            h = self.norm(x, p + "input_layernorm.weight")
            q = self.linear(h, p + "self_attn.q_proj").view(b, t, self.heads, self.hd).transpose(1, 2)
            k = self.linear(h, p + "self_attn.k_proj").view(b, t, self.kv, self.hd).transpose(1, 2)
            v = self.linear(h, p + "self_attn.v_proj").view(b, t, self.kv, self.hd).transpose(1, 2)
            q = q * cos + self.rotate(q) * sin
            k = k * cos + self.rotate(k) * sin
            if cache[i] is not None:
                k = torch.cat([cache[i][0], k], dim=2)
                v = torch.cat([cache[i][1], v], dim=2)
            cache[i] = (k, v)
            rep = self.heads // self.kv
            if rep > 1:
                k = k[:, :, None].expand(b, self.kv, rep, k.shape[2], self.hd).reshape(b, self.heads, k.shape[2], self.hd)
                v = v[:, :, None].expand(b, self.kv, rep, v.shape[2], self.hd).reshape(b, self.heads, v.shape[2], self.hd)
            scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.hd)
            if mask is not None:
                scores = scores + mask
            probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
            ctx = torch.matmul(probs, v).transpose(1, 2).reshape(b, t, self.heads * self.hd)
            x = x + self.linear(ctx, p + "self_attn.o_proj")
            h = self.norm(x, p + "post_attention_layernorm.weight")
            m = F.silu(self.linear(h, p + "mlp.gate_proj")) * self.linear(h, p + "mlp.up_proj")
            x = x + self.linear(m, p + "mlp.down_proj")
        x = self.norm(x, "model.norm.weight")
        last = x[:, -1:, :]  # transformers' logits_to_keep=1
        return self.linear(last, "lm_head").float()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    warnings.filterwarnings("ignore", message="The given buffer is not writable")
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    model = None
    vocab = 0
    for line in sys.stdin:
        req = json.loads(line)
        with torch.inference_mode():
            if req["op"] == "load":
                model = None
                start = time.perf_counter()
                model = Llama(req["model"], req.get("adapter"))
                out = {"seconds": time.perf_counter() - start, "bytes": model.bytes, "threads": torch.get_num_threads(), "torch": torch.__version__}
                vocab = model.cfg["vocab_size"]
            elif req["op"] == "prefill":
                ids = (torch.arange(req["batch"] * req["tokens"]).reshape(req["batch"], req["tokens"]) * 37) % vocab
                start = time.perf_counter()
                model.forward(ids, [None] * model.layers, 0)
                out = {"seconds": time.perf_counter() - start}
            elif req["op"] == "decode":
                ids = (torch.arange(req["batch"] * req["prompt"]).reshape(req["batch"], req["prompt"]) * 37) % vocab
                start = time.perf_counter()
                cache = [None] * model.layers
                logits = model.forward(ids, cache, 0)
                past = req["prompt"]
                for step in range(req["new"]):
                    nxt = logits[:, -1].argmax(-1)
                    nxt.tolist()  # the host reads the tokens (stop checks), as generate does
                    if step == req["new"] - 1:
                        break
                    logits = model.forward(nxt[:, None], cache, past)
                    past += 1
                out = {"seconds": time.perf_counter() - start}
            else:
                out = {"error": "unknown op"}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
