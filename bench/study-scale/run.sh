#!/usr/bin/env bash
# The study's time as the number of experts grows: K = 12, 24, 48 copies of the bundled experts (make_suite.py),
# the three studies run side by side so that they share whatever load the machine has (their ratios are what this
# measures), each a --quick study of one strategy per kind. Writes OUT/K/results.json and prints the stage table.
# Usage: bench/study-scale/run.sh [OUT=/tmp/study-scale] [STRATEGIES] [K...]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"; root="$(cd "$here/../.." && pwd)"
out="${1:-/tmp/study-scale}"; strategies="${2:-base,merge-uniform,merge-ties,route-learned-top1,select-clusters-k4}"
ks=("${@:3}"); [ ${#ks[@]} -gt 0 ] || ks=(12 24 48)
export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
cli="$root/src/Amalgam.Cli/bin/Debug/net10.0/Amalgam.Cli.dll"
mkdir -p "$out"; cat /proc/loadavg > "$out/loadavg-start"
for k in "${ks[@]}"; do
  /usr/bin/python3 "$here/make_suite.py" "$root/suite" "$out/suite-$k" "$k"
  ( /usr/bin/time -f "%e s wall, %U s user" dotnet "$cli" study --suite "$out/suite-$k" --out "$out/$k" --quick --bootstrap 200 \
      --strategies "$strategies" > "$out/log-$k" 2>&1 ) &
done
wait; cat /proc/loadavg > "$out/loadavg-end"
/usr/bin/python3 - "$out" "${ks[@]}" <<'PY'
import json, sys
out, ks = sys.argv[1], sys.argv[2:]
rs = {k: json.load(open(f"{out}/{k}/results.json")) for k in ks}
names = [s["name"] for s in rs[ks[0]]["stages"]]
def cpu(k, n):
    return next((s.get("cpu_seconds") or 0 for s in rs[k]["stages"] if s["name"] == n), 0)
print("CPU seconds per stage (wall seconds in parentheses); ratio = K=%s over K=%s" % (ks[-1], ks[0]))
print("| stage | " + " | ".join(f"K = {k}" for k in ks) + f" | ratio {ks[-1]}/{ks[0]} |")
print("|---|" + "---|" * (len(ks) + 1))
for n in names:
    wall = {k: next((s["seconds"] for s in rs[k]["stages"] if s["name"] == n), 0) for k in ks}
    ratio = cpu(ks[-1], n) / cpu(ks[0], n) if cpu(ks[0], n) > 0 else float("nan")
    print(f"| {n} | " + " | ".join(f"{cpu(k, n):.1f} ({wall[k]:.0f})" for k in ks) + f" | {ratio:.2f} |")
tot = {k: sum(s.get("cpu_seconds") or 0 for s in rs[k]["stages"]) for k in ks}
print("| total | " + " | ".join(f"{tot[k]:.1f} ({rs[k]['total_seconds']:.0f})" for k in ks) + f" | {tot[ks[-1]] / tot[ks[0]]:.2f} |")
PY
