#!/usr/bin/env python3
"""Writes a suite.yaml with K experts for the study's scaling measurement (docs/study.md, "Scale in experts").

The bundled suite's held-in tasks are repeated under new names (task, task_r2, task_r3, ...) until there are K
held-in tasks, each pointing at the same data and the same expert folder as its original; the held-out tasks are
kept once. The experts are therefore copies, which is what a scaling measurement of time needs (routers, merges and
ensembles do the same work whatever the weights hold); quality numbers of such a suite mean nothing.
Usage: make_suite.py BUNDLED_SUITE_DIR OUT_DIR K
"""
import os
import sys

import yaml  # python3-yaml (Debian)

src, out, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(os.path.join(src, "suite.yaml")) as f:
    spec = yaml.safe_load(f)
os.makedirs(out, exist_ok=True)
rel = lambda p: os.path.relpath(os.path.join(os.path.abspath(src), p), os.path.abspath(out))
held_in = [t for t in spec["tasks"] if not t.get("held_out")]
held_out = [t for t in spec["tasks"] if t.get("held_out")]
tasks = []
for i in range(k):
    t = dict(held_in[i % len(held_in)])
    r = i // len(held_in)
    t["data"] = rel(t.get("data", "data/" + t["name"]))
    t["expert"] = rel(t["expert"])
    if r > 0:
        t["name"] = f"{t['name']}_r{r + 1}"
    tasks.append(t)
for t in held_out:
    t = dict(t)
    t["data"] = rel(t.get("data", "data/" + t["name"]))
    tasks.append(t)
spec["name"] = f"{spec['name']}-x{k}"
spec["base"] = rel(spec["base"])
spec["tasks"] = tasks
with open(os.path.join(out, "suite.yaml"), "w") as f:
    yaml.safe_dump(spec, f, sort_keys=False)
