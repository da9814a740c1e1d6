#!/usr/bin/env bash
# Coverage-guided fuzzing of the safetensors header reader or the YAML readers (recipes, suite.yaml) with
# SharpFuzz + AFL++ (Debian: apt-get install afl++; dotnet tool install --global SharpFuzz.CommandLine).
#   bench/fuzz.sh safetensors 600     # fuzz for 600 s; findings under fuzz-out/safetensors/default/{crashes,hangs}
#   bench/fuzz.sh yaml 600
#   bench/fuzz.sh tokenizer 600     # tokenizer.json: the reader, then an encode and a decode
# Replay a finding with the uninstrumented build (the instrumented one needs AFL's shared memory):
#   dotnet run --project tests/Fuzz/Amalgam.Fuzz -c Release -- yaml fuzz-out/yaml/default/crashes/id:000000...
set -euo pipefail
target=${1:?usage: bench/fuzz.sh safetensors|yaml|tokenizer [SECONDS]}
seconds=${2:-600}
root=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD:-$root/fuzz-build}  # another folder lets one target be rebuilt while others run
out=$root/fuzz-out/$target
export PATH="$PATH:$HOME/.dotnet/tools"

# FUZZ_NO_BUILD=1 reuses fuzz-build (to run several targets at once: a rebuild would replace the instrumented dll).
if [ "${FUZZ_NO_BUILD:-}" != 1 ]; then
  dotnet build -c Release "$root/tests/Fuzz/Amalgam.Fuzz" -o "$build" >/dev/null
  # Instrument the library only (the readers live there); a second run finds it instrumented already.
  sharpfuzz "$build/Amalgam.dll" 2>&1 | grep -v "already instrumented" || true
fi

mkdir -p "$out"
export AFL_SKIP_BIN_CHECK=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1
export OMP_NUM_THREADS=1 DOTNET_TieredPGO=0
# -t: a run may take 5 s (the first one starts the runtime); -m none: .NET reserves much virtual memory.
afl-fuzz -i "$root/tests/Fuzz/corpus/$target" -o "$out" -t 5000 -m none -V "$seconds" -- dotnet "$build/Amalgam.Fuzz.dll" "$target"
echo "crashes: $(find "$out/default/crashes" -type f -name 'id:*' | wc -l), hangs: $(find "$out/default/hangs" -type f -name 'id:*' | wc -l)"
grep -E "execs_done|execs_per_sec|corpus_count|bitmap_cvg|saved_crashes|saved_hangs|run_time" "$out/default/fuzzer_stats" || true
