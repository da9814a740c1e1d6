#!/usr/bin/env python3
"""mergekit's TIES, per tensor, in eager PyTorch: the reference the merge benchmark times in the same run.

    /usr/bin/python3 ties_mergekit.py --base DIR --model DIR [--model DIR]... --out DIR [--density 0.5] [--weight 0.5]
                                      [--threads N] [--method ties|task_arithmetic]

Follows mergekit (sparsify.magnitude, generalized_task_arithmetic with get_mask(method="sum")): per tensor,
δᵢ = θᵢ − θ₀ in float32; keep the int(d·n) largest |δᵢ| (argsort); stack; wᵢ·δᵢ; elected sign = sign of the sum
(≥ 0 → +1); agreeing entries summed and divided by Σ wᵢ·aᵢ (1 where |·| < 1e-8); θ₀ + λ·mixed cast back to the
stored dtype. Safetensors are memory-mapped and written by hand (Debian ships torch but not safetensors).
Prints one JSON line: seconds, peak RssAnon sampled every 20 ms, VmHWM.
"""
import argparse, json, mmap, os, struct, threading, time
import torch

DTYPES = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32}
NAMES = {v: k for k, v in DTYPES.items()}


class SafeTensors:
    def __init__(self, folder):
        index = os.path.join(folder, "model.safetensors.index.json")
        files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) else ["model.safetensors"]
        self.where, self.maps = {}, []
        for f in files:
            fh = open(os.path.join(folder, f), "rb")
            m = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            n = struct.unpack("<Q", m[:8])[0]
            header = json.loads(m[8:8 + n])
            header.pop("__metadata__", None)
            for name, info in header.items():
                self.where[name] = (m, 8 + n, info)
            self.maps.append(m)

    def names(self):
        return list(self.where)

    def load(self, name):
        m, start, info = self.where[name]
        b, e = info["data_offsets"]
        # a copy out of the map, as safetensors' safe_open.get_tensor does
        return torch.frombuffer(bytearray(m[start + b:start + e]), dtype=DTYPES[info["dtype"]]).reshape(info["shape"])


def write_safetensors(path, tensors):
    header, offset = {}, 0
    for name, t in tensors:
        size = t.numel() * t.element_size()
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + size]}
        offset += size
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for _, t in tensors:
            f.write(t.contiguous().view(torch.uint8).numpy().tobytes() if t.dtype != torch.bfloat16 else t.contiguous().view(torch.int16).numpy().tobytes())


def magnitude(tensor, density):
    # mergekit.sparsify.magnitude (rescale off, as TIES uses it)
    if density >= 1:
        return tensor
    k = int(density * tensor.numel())
    mask = torch.zeros_like(tensor)
    w = tensor.abs().view(-1)
    topk = torch.argsort(w, descending=True)[:k]
    mask.view(-1)[topk] = 1
    return tensor * mask


def get_mask(delta):
    # mergekit.merge_methods.generalized_task_arithmetic.get_mask(method="sum")
    sign = delta.sign()
    majority_sign = (delta.sum(dim=0) >= 0).to(delta.dtype) * 2 - 1
    return sign == majority_sign


def merge_tensor(base, models, weights, density, method, lam):
    base32 = base.to(torch.float32)
    deltas = []
    for m in models:
        d = m.to(torch.float32) - base32
        deltas.append(magnitude(d, density) if method == "ties" else d)
    deltas = torch.stack(deltas, dim=0)
    w = torch.tensor(weights, dtype=deltas.dtype)
    while len(w.shape) < len(deltas.shape):
        w = w.unsqueeze(-1)
    weighted = deltas * w
    if method == "ties":
        mask = get_mask(weighted)
        mixed = (weighted * mask).sum(dim=0)
        divisor = (w * mask).sum(dim=0)
        divisor[divisor.abs() < 1e-8] = 1
        mixed /= divisor
    else:
        mixed = weighted.sum(dim=0)
    return (base32 + lam * mixed).to(base.dtype)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--density", type=float, default=0.5)
    ap.add_argument("--weight", type=float, default=0.5)
    ap.add_argument("--lambda", dest="lam", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--method", default="ties", choices=["ties", "task_arithmetic"])
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)

    def status(field):
        for line in open("/proc/self/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        return 0

    peak, stop = [status("RssAnon")], threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], status("RssAnon"))
            time.sleep(0.02)

    threading.Thread(target=sample, daemon=True).start()
    start = time.perf_counter()
    with torch.inference_mode():
        base = SafeTensors(a.base)
        models = [SafeTensors(m) for m in a.model]
        os.makedirs(a.out, exist_ok=True)
        out = []
        for name in base.names():
            merged = merge_tensor(base.load(name), [m.load(name) for m in models], [a.weight] * len(models), a.density, a.method, a.lam)
            out.append((name, merged))
        # mergekit writes shards as it goes; one file here, each tensor kept in the output dtype until written
        write_safetensors(os.path.join(a.out, "model.safetensors"), out)
    seconds = time.perf_counter() - start
    stop.set()
    print(json.dumps({"seconds": seconds, "peak_anon": peak[0], "vmhwm": status("VmHWM"), "threads": torch.get_num_threads(), "torch": torch.__version__}))


if __name__ == "__main__":
    main()
