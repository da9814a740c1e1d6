#!/usr/bin/env python3
"""Two Amalgam processes side by side: each one's wall time as a ratio to its quiet time, measured in the same run.

    dotnet build src/Amalgam.Cli -c Release
    python3 bench/contention/contention.py [--rounds 3] [--policies PASSIVE,ACTIVE] [-- amalgam args]

Each round runs the command alone (quiet), then two copies at once, for every wait policy; ratios are
side-by-side time / the median quiet time of the same policy. Sharing the cores fairly gives about 2x on a machine
whose cores the command fills alone; OpenMP workers that spin after each parallel region (libgomp's
behaviour when no policy is set; `--policies spin` reproduces it with GOMP_SPINCOUNT=300000, the count libgomp uses
then; `ACTIVE` spins without end) give much more. The default (no policy in the environment) is what
amalgam sets itself: PASSIVE. Reports the load average before and after, since other jobs distort everything.
"""
import argparse, json, os, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.path.join(ROOT, "src", "Amalgam.Cli", "bin", "Release", "net10.0", "Amalgam.Cli.dll")


def env_for(policy):
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "GOMP_SPINCOUNT")}
    if policy == "spin":
        # libgomp's own default with no policy set: spin 300000 times before sleeping (what ran before amalgam set PASSIVE)
        env["GOMP_SPINCOUNT"] = "300000"
    elif policy.startswith("spin") and policy[4:].isdigit():
        # a chosen spin count with no policy set, e.g. spin20000
        env["GOMP_SPINCOUNT"] = policy[4:]
    elif policy != "default":
        env["OMP_WAIT_POLICY"] = policy
    return env


def start(cmd, policy):
    return subprocess.Popen(["dotnet", CLI] + cmd, cwd=ROOT, env=env_for(policy), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait(p, t0):
    _, err = p.communicate()
    if p.returncode != 0:
        sys.exit(f"amalgam failed ({p.returncode}): {err.decode()[-400:]}")
    return time.perf_counter() - t0


def run_alone(cmd, policy):
    t0 = time.perf_counter()
    return wait(start(cmd, policy), t0)


def run_pair(cmd, policy):
    t0 = time.perf_counter()
    a, b = start(cmd, policy), start(cmd, policy)
    return [wait(a, t0), wait(b, t0)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--policies", default="default,spin")
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("cmd", nargs="*", default=["eval", "--suite", "suite"])
    args = ap.parse_args()
    if not os.path.exists(CLI):
        sys.exit(f"{CLI} missing: dotnet build src/Amalgam.Cli -c Release")
    policies = args.policies.split(",")
    load_before = open("/proc/loadavg").read().split()[:3]
    quiet = {p: [] for p in policies}
    pair = {p: [] for p in policies}
    for r in range(args.rounds):
        for p in policies:
            quiet[p].append(run_alone(args.cmd, p))
            pair[p].append(run_pair(args.cmd, p))
            print(f"round {r + 1} {p}: alone {quiet[p][-1]:.2f} s, side by side {pair[p][-1][0]:.2f} s / {pair[p][-1][1]:.2f} s", flush=True)
    load_after = open("/proc/loadavg").read().split()[:3]
    result = {"command": "amalgam " + " ".join(args.cmd), "cores": len(os.sched_getaffinity(0)), "load_before": load_before, "load_after": load_after, "policies": {}}
    print(f"\n`amalgam {' '.join(args.cmd)}`, {result['cores']} cores, {args.rounds} rounds, load average before {' '.join(load_before)}, after {' '.join(load_after)}")
    print("| OMP_WAIT_POLICY | alone (median) | side by side (median of both) | ratio per process (each round) | worst |")
    print("|---|---|---|---|---|")
    for p in policies:
        q = statistics.median(quiet[p])
        both = [t for ts in pair[p] for t in ts]
        ratios = [t / q for t in both]
        result["policies"][p] = {"alone_s": quiet[p], "side_by_side_s": pair[p], "ratios": ratios}
        label = {"default": "unset (amalgam sets PASSIVE)", "spin": "libgomp's default spinning (GOMP_SPINCOUNT=300000)"}.get(p, p)
        print(f"| {label} | {q:.2f} s | {statistics.median(both):.2f} s | {', '.join(f'{x:.2f}' for x in ratios)} | {max(ratios):.2f}x |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
