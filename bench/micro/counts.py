#!/usr/bin/env python3
"""Instruction counts per operation, with valgrind's callgrind, for the cases of the server's
pipeline bench (crates/server/benches/pipeline.rs).

Each case runs once under `valgrind --tool=callgrind` (COSMOGATE_BENCH_COUNT=<case>:<n>), with
collection switched on only inside the bench's `counted_iterations` function, which runs the
case n times after a warm-up call; the collected total divided by n is the instructions of one
operation. Start-up (runtime, key server, key parsing) is not counted. Instruction counts do
not depend on how busy the machine is, which makes their ratios repeatable where wall-clock
figures on a shared machine are not; they do not see cache misses or stalls.

Writes counts.csv: case, instructions per operation, ratio to the cached-token pipeline.
"""

import argparse
import csv
import os
import re
import subprocess
import sys
import tempfile

CASES = [
    "pipeline_cached_rs256",
    "pipeline_full_cached_rs256",
    "pipeline_fresh_rs256",
    "pipeline_fresh_es256",
    "validate_cached_rs256",
    "validate_fresh_rs256",
    "validate_fresh_es256",
    "step_parse_authorization",
    "step_classify",
    "step_classify_bulk_100",
    "step_decide",
    "step_audit_record",
]
BASELINE = "pipeline_cached_rs256"


def instructions(binary, case, iterations, scratch):
    out_file = os.path.join(scratch, f"{case}.{iterations}.out")
    env = dict(os.environ, COSMOGATE_BENCH_COUNT=f"{case}:{iterations}")
    subprocess.run(
        ["valgrind", "--tool=callgrind", "--toggle-collect=*counted_iterations*",
         f"--callgrind-out-file={out_file}", binary],
        env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    with open(out_file) as f:
        for line in f:
            match = re.match(r"(?:summary|totals): (\d+)", line)
            if match:
                return int(match.group(1))
    sys.exit(f"no instruction total in {out_file}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary", help="the pipeline bench executable")
    parser.add_argument("--out", default="bench/micro/data/counts.csv")
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--keep", help="keep the callgrind output files in this directory")
    parser.add_argument("cases", nargs="*", default=CASES)
    args = parser.parse_args()

    results = {}
    with tempfile.TemporaryDirectory(prefix="cosmogate-callgrind-") as scratch:
        scratch = args.keep or scratch
        os.makedirs(scratch, exist_ok=True)
        for case in args.cases:
            total = instructions(args.binary, case, args.iterations, scratch)
            if total == 0:
                sys.exit(f"{case}: nothing counted; was counted_iterations inlined?")
            results[case] = total / args.iterations
            print(f"{case}: {results[case]:,.0f} instructions per operation", flush=True)

    baseline = results.get(BASELINE)
    with open(args.out, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["case", "instructions_per_op", "ratio_to_pipeline_cached"])
        for case, count in results.items():
            ratio = f"{count / baseline:.3f}" if baseline else ""
            out.writerow([case, f"{count:.0f}", ratio])


if __name__ == "__main__":
    main()
