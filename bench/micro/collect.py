#!/usr/bin/env python3
"""Turns criterion's output of one run into the CSV files of bench/micro/data.

Reads every target/criterion/**/new/{benchmark,estimates}.json written after the stamp file
given with --since (so results of earlier runs are never mixed in) and writes:

- results.csv: every benchmark: id, median and its 95 % interval in ns, and the ratio of the
  median to the cached-token pipeline's median of the same run;
- growth-rules.csv: the policy decision by number of rules (group decide_rules);
- growth-issuers.csv: token validation by number of configured issuers (group issuers);
- results.md: results.csv as a Markdown table, for docs/microbenchmarks.md.

Only the standard library is used.
"""

import argparse
import csv
import json
import os
import sys

BASELINE = "pipeline/cached_rs256"


def load(root, since):
    rows = []
    for directory, _, files in os.walk(root):
        if os.path.basename(directory) != "new" or "estimates.json" not in files:
            continue
        estimates_path = os.path.join(directory, "estimates.json")
        if since is not None and os.path.getmtime(estimates_path) < since:
            continue
        with open(os.path.join(directory, "benchmark.json")) as f:
            bench = json.load(f)
        with open(estimates_path) as f:
            estimates = json.load(f)
        median = estimates["median"]
        interval = median["confidence_interval"]
        rows.append({
            "id": bench["full_id"],
            "group": bench["group_id"],
            "function": bench.get("function_id") or "",
            "value": bench.get("value_str") or "",
            "median_ns": median["point_estimate"],
            "lower_ns": interval["lower_bound"],
            "upper_ns": interval["upper_bound"],
        })
    rows.sort(key=lambda r: (r["group"], r["function"], int(r["value"]) if r["value"].isdigit() else 0, r["value"]))
    return rows


def fmt(ns):
    return f"{ns:.1f}"


def human(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.0f} ns"


def write_growth(rows, group, path):
    picked = [r for r in rows if r["group"] == group and r["value"].isdigit()]
    picked.sort(key=lambda r: (r["function"], int(r["value"])))
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["n", "ns_per_op", "case", "ns_lower", "ns_upper"])
        for r in picked:
            out.writerow([r["value"], fmt(r["median_ns"]), r["function"], fmt(r["lower_ns"]), fmt(r["upper_ns"])])
    return len(picked)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--criterion", default="target/criterion")
    parser.add_argument("--out", default="bench/micro/data")
    parser.add_argument("--since", help="ignore results older than this file's mtime")
    args = parser.parse_args()

    since = os.path.getmtime(args.since) if args.since else None
    rows = load(args.criterion, since)
    if not rows:
        sys.exit(f"no criterion results in {args.criterion}" + (" since the stamp" if since else ""))
    baseline = next((r["median_ns"] for r in rows if r["id"] == BASELINE), None)
    os.makedirs(args.out, exist_ok=True)

    with open(os.path.join(args.out, "results.csv"), "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["id", "median_ns", "lower_ns", "upper_ns", "ratio_to_pipeline_cached"])
        for r in rows:
            ratio = f"{r['median_ns'] / baseline:.3f}" if baseline else ""
            out.writerow([r["id"], fmt(r["median_ns"]), fmt(r["lower_ns"]), fmt(r["upper_ns"]), ratio])

    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write("| benchmark | median | 95 % interval | × cached pipeline |\n|---|---:|---:|---:|\n")
        for r in rows:
            ratio = f"{r['median_ns'] / baseline:.2f}" if baseline else "–"
            f.write(f"| `{r['id']}` | {human(r['median_ns'])} | {human(r['lower_ns'])} – {human(r['upper_ns'])} | {ratio} |\n")

    rules = write_growth(rows, "decide_rules", os.path.join(args.out, "growth-rules.csv"))
    issuers = write_growth(rows, "issuers", os.path.join(args.out, "growth-issuers.csv"))
    print(f"{len(rows)} benchmarks, {rules} rule-growth and {issuers} issuer-growth points; "
          f"baseline {BASELINE} = {human(baseline) if baseline else 'not measured'}")


if __name__ == "__main__":
    main()
