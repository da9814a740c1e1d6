#!/usr/bin/env python3
"""Independent implementation of the study's paired bootstrap (docs/study.md, "Uncertainty"), for the golden test.

Writes bootstrap_golden.json: a tiny study (3 held-in tasks, 1 held-out, 3 strategies) with per-example scores, and
the 95 % percentile intervals of held-in normalised, gap closed and held-out, plus one paired difference, computed
with SplitMix64 draws (index = floor(u * n), u = (x >> 11) * 2**-53) and numpy's linear quantiles.
Run: python3 tests/Golden/study/study_bootstrap.py (numpy only).
"""
import json
import os
import numpy as np

MASK = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def index(self, n):
        return int((self.next() >> 11) * (1.0 / (1 << 53)) * n)


rng = np.random.default_rng(7)
tasks = [("a", False, 12), ("b", False, 9), ("c", False, 10), ("x", True, 8)]
expert = {"a": 1.0, "b": 0.8, "c": 0.5}
base = {"a": 0.2, "b": 0.1, "c": 0.6, "x": 0.25}   # c: expert below base -> left out of gap closed
strategies = {}
for name, p in [("s1", 0.7), ("s2", 0.5), ("s3", 0.3)]:
    strategies[name] = {t: [float(v) for v in (rng.random(n) < p)] for t, _, n in tasks}

samples, seed, level = 500, 3, 0.95
gen = SplitMix64(seed)
draws = [[[gen.index(n) for _ in range(n)] for _, _, n in tasks] for _ in range(samples)]


def replicates(per_example):
    held_in, gap, held_out = [], [], []
    for b in range(samples):
        means = {}
        for ti, (t, _, n) in enumerate(tasks):
            x = per_example[t]
            means[t] = sum(x[i] for i in draws[b][ti]) / n
        held_in.append(np.mean([means[t] / expert[t] for t, h, _ in tasks if not h and expert[t] > 0]))
        gap.append(np.mean([(means[t] - base[t]) / (expert[t] - base[t]) for t, h, _ in tasks if not h and expert[t] > base[t]]))
        held_out.append(np.mean([means[t] for t, h, _ in tasks if h]))
    return np.array(held_in), np.array(gap), np.array(held_out)


def interval(v):
    a = (1 - level) / 2
    return [float(np.quantile(v, a)), float(np.quantile(v, 1 - a))]


out = {"samples": samples, "seed": seed, "level": level, "tasks": [{"name": t, "held_out": h} for t, h, _ in tasks],
       "expert_scores": expert, "base_scores": base, "first_draws_seed_0": [], "strategies": []}
g0 = SplitMix64(0)
out["first_draws_seed_0"] = [str(g0.next()) for _ in range(3)]
reps = {}
for name, per_example in strategies.items():
    hi, gc, ho = replicates(per_example)
    reps[name] = hi
    out["strategies"].append({"name": name, "per_example": per_example, "held_in_interval": interval(hi),
                              "gap_closed_interval": interval(gc), "held_out_interval": interval(ho)})
out["difference_s1_minus_s2"] = interval(reps["s1"] - reps["s2"])
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "bootstrap_golden.json"), "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
