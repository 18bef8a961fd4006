#!/usr/bin/env bash
# Runs cosmogate's criterion micro-benchmarks with short settings and writes the CSV files of
# bench/micro/data from criterion's estimates (see docs/microbenchmarks.md).
#
# Usage: bench/micro/run.sh [--no-counts] [--counts-only]
#   --no-counts    skip the callgrind instruction counts (the slowest part, about 3 minutes)
#   --counts-only  only the instruction counts
# Environment: MICRO_WARM_UP (seconds, default 1), MICRO_MEASURE (seconds, default 3).
#
# Wall-clock results: bench/micro/data/{results.csv,results.md,growth-rules.csv,
# growth-issuers.csv}; instruction counts: bench/micro/data/counts.csv.
set -euo pipefail
cd "$(dirname "$0")/../.."

criterion=1
counts=1
for arg in "$@"; do
  case $arg in
    --no-counts) counts=0 ;;
    --counts-only) criterion=0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

args=(--warm-up-time "${MICRO_WARM_UP:-1}" --measurement-time "${MICRO_MEASURE:-3}" --noplot)
# package:bench, in the order of a request.
benches=(
  cosmogate-protocol:authorization
  cosmogate-validator:validate
  cosmogate-protocol:classify
  cosmogate-policy:decide
  cosmogate-server:audit
  cosmogate-upstream:hop
  cosmogate-protocol:rewrite
  cosmogate-server:pipeline
)
data=bench/micro/data
mkdir -p "$data"

# The bench executables, built once for all packages together: `cargo bench -p <one>` would
# resolve the dependencies' features differently and rebuild them for every package.
executables() {
  local packages=()
  for entry in "${benches[@]}"; do packages+=("${entry%%:*}"); done
  mapfile -t packages < <(printf '%s\n' "${packages[@]}" | sort -u)
  cargo bench --locked --no-run "${packages[@]/#/--package=}" --message-format=json | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and "bench" in m["target"]["kind"]:
        print(m["target"]["name"], m["executable"])'
}

declare -A executable
while read -r name path; do executable[$name]=$path; done < <(executables)

if ((criterion)); then
  stamp=$(mktemp)
  for entry in "${benches[@]}"; do
    name=${entry##*:}
    echo "== ${entry}" >&2
    "${executable[$name]}" --bench "${args[@]}"
  done
  python3 bench/micro/collect.py --criterion target/criterion --out "$data" --since "$stamp"
  rm -f "$stamp"
fi

if ((counts)); then
  if ! command -v valgrind >/dev/null; then
    echo "valgrind is not installed: skipping instruction counts" >&2
    exit 0
  fi
  python3 bench/micro/counts.py "${executable[pipeline]}" --out "$data/counts.csv"
fi
