#!/usr/bin/env python3
"""Where a fixed-rate run's latency is spent, from cosmogate's own audit records.

Usage: audit_latency.py AUDIT_JSONL TOKENS_DIR [SKIP_SECONDS]

The harness's latency phase sends one token per cosmogate row (RS256, then ES256). Each audit
record carries `latency_ms` (from the request head to the end of the response body, as
cosmogate saw it) and `upstream_latency_ms` (from handing the request to the upstream pool to
the upstream's response head). Their difference is what cosmogate itself spent on the request:
validation, classification, policy, the audit record, relaying the body. The load generator's
own figure, beside these in the harness's table.md, also holds the time a request waits in
socket queues and for the proxy's thread to run, which no audit record can see.

Records are grouped by the token that made them (the fingerprint cosmogate logs is the first 8
bytes of the token's SHA-256, hex); only the load generator's requests (user agent `oha`)
count, and the first SKIP_SECONDS (default 2, the harness's warm-up) of each row are left out.
Prints a Markdown table.
"""

import datetime
import hashlib
import json
import sys
from pathlib import Path

ROWS = (("product-RS256", "rs256-good.jwt"), ("product-ES256", "es256-good.jwt"))


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.strip().encode()).digest()[:8].hex()


def percentile(values, fraction):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def when(record):
    return datetime.datetime.fromisoformat(record["time"].replace("Z", "+00:00")).timestamp()


def main() -> int:
    if len(sys.argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    audit, tokens = Path(sys.argv[1]), Path(sys.argv[2])
    skip = float(sys.argv[3]) if len(sys.argv) == 4 else 2.0
    rows = {fingerprint((tokens / name).read_text()): peer for peer, name in ROWS}
    grouped = {peer: [] for peer, _ in ROWS}
    with audit.open() as lines:
        for line in lines:
            record = json.loads(line)
            principal = record.get("principal") or {}
            peer = rows.get(principal.get("token_fingerprint"))
            if peer and (record.get("user_agent") or "").startswith("oha"):
                grouped[peer].append(record)

    print("| row | requests | cosmogate p50 / p99 / p99.9 ms | upstream leg p50 / p99 / p99.9 ms "
          "| cosmogate's own part p50 / p99 / p99.9 ms | over 1 ms |")
    print("|---|---|---|---|---|---|")
    for peer, _ in ROWS:
        records = grouped[peer]
        if records:
            start = min(when(r) for r in records) + skip
            records = [r for r in records if when(r) >= start]
        if not records:
            print(f"| {peer} | 0 | – | – | – | – |")
            continue
        total = [r["latency_ms"] for r in records]
        upstream = [r["upstream_latency_ms"] or 0.0 for r in records]
        own = [t - u for t, u in zip(total, upstream)]

        def three(values):
            return " / ".join(f"{percentile(values, p):.3f}" for p in (0.5, 0.99, 0.999))

        slow = sum(1 for t in total if t > 1.0)
        print(f"| {peer} | {len(records)} | {three(total)} | {three(upstream)} | {three(own)} "
              f"| {slow} ({100 * slow / len(records):.2f} %) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
