"""Measures how far `amalgam logits --all-positions` is from the float64 goldens, for every case and sequence.

Run from the repo root after `dotnet build src/Amalgam.Cli -c Release`:
    /usr/bin/python3 tests/Golden/compare_cli.py [GOLDENS]   # goldens.json (default) or peft_goldens.json
"""
import json, os, subprocess, sys

CLI = ["dotnet", os.environ.get("AMALGAM_CLI_DLL", "src/Amalgam.Cli/bin/Release/net10.0/Amalgam.Cli.dll")]
DATA = "tests/Golden/data/"
worst = 0.0
for case in json.load(open(DATA + (sys.argv[1] if len(sys.argv) > 1 else "goldens.json"))):
    diffs = []
    for seq, ref in zip(case["sequences"], case["logits"]):
        args = CLI + ["logits", "--all-positions", "--model", DATA + case["model"], "--ids", ",".join(map(str, seq))]
        if case["adapter"]:
            args += ["--adapter", DATA + case["adapter"]]
        out = json.loads(subprocess.run(args, capture_output=True, text=True, check=True).stdout)["logits"]
        diffs.append(max(abs(a - b) for row, rrow in zip(out, ref) for a, b in zip(row, rrow)))
    print(f"{case['name']:24s} max |Δlogit| = {max(diffs):.2e}")
    if "bf16" not in case["name"]:
        worst = max(worst, max(diffs))
print(f"worst float32 case: {worst:.2e}")
sys.exit(0 if worst <= 1e-4 else 1)
