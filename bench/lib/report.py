#!/usr/bin/env python3
"""Tables and growth CSVs from one benchmark run of bench/peers.sh.

usage: report.py RESULTS_DIR PEERS_COPY

Reads RESULTS_DIR/{peers,latency} (the peer harness's own runs.jsonl and raw outputs, loaded
with the harness's summarize.py from PEERS_COPY) and RESULTS_DIR/{extra,growth} (this bench's
runs.jsonl), and writes RESULTS_DIR/report.md plus RESULTS_DIR/growth/*.csv for plot.py.
Every cost figure is the metered proxy's own CPU time (user+system, /proc) divided by the
requests the load generator completed, and every ratio compares rows of the same run.
"""
import csv
import json
import os
import re
import sys

UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def parse_wrk(text):
    r = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    r["rps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"(\d+) requests in", text)
    r["requests"] = int(m.group(1)) if m else 0
    for pct in ("50", "90", "99"):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        r[f"p{pct}"] = float(m.group(1)) * UNIT[m.group(2)] if m else None
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    r["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    r["sockerr"] = sum(int(x) for x in m.groups()) if m else 0
    m = re.search(r"token pool: size (\d+), sent (\d+), wrapped (\d+)", text)
    r["pool"] = tuple(int(x) for x in m.groups()) if m else None
    return r


def load_runs(phase_dir):
    path = os.path.join(phase_dir, "runs.jsonl")
    rows = []
    if not os.path.exists(path):
        return rows
    for line in open(path):
        m = json.loads(line)
        r = parse_wrk(open(os.path.join(phase_dir, "raw", m["id"] + ".txt")).read())
        r.update(m)
        n = max(r["requests"], 1)
        hz = m["hz"]
        r["px_us"] = m["proxy_ticks"] / hz / n * 1e6 if m["proxy_ticks"] else None
        r["up_us"] = m["upstream_ticks"] / hz / n * 1e6
        lt = m["loadgen_cpu"].split()
        lg = float(lt[0]) + float(lt[1]) if len(lt) == 2 else 0.0
        a = [int(x) for x in m["machine0"].split()]
        b = [int(x) for x in m["machine1"].split()]
        busy_s = (b[0] - a[0]) / hz
        total_s = (b[1] - a[1]) / hz
        metered = m["proxy_ticks"] / hz + m["upstream_ticks"] / hz + lg
        r["machine_busy_pct"] = 100.0 * busy_s / total_s if total_s else 0.0
        r["other_pct"] = 100.0 * (busy_s - metered) / total_s if total_s else 0.0
        lookups = m["cache_hits"] + m["cache_misses"]
        r["hit_rate"] = m["cache_hits"] / lookups if lookups else None
        r["errors"] = r["non2xx"] + r["sockerr"]
        rows.append(r)
    return rows


def deferred(r):
    """Verified tokens the cache's doorkeeper left out (first sightings while nearly full);
    runs from before the doorkeeper have no such field."""
    return r.get("deferred", "-") if r.get("row", "").startswith("cg") else "-"


def fmt(x, nd=1):
    return "-" if x is None else f"{x:.{nd}f}"


def ratio(a, b):
    return a / b if a is not None and b else None


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def harness_section(res, peers_copy, sub, title):
    d = os.path.join(res, sub)
    if not os.path.exists(os.path.join(d, "runs.jsonl")):
        return "", []
    sys.path.insert(0, peers_copy)
    from summarize import load  # the harness's own reader of its results

    rows = load(d)
    for r in rows:
        r["px_us"] = r["px10k"] * 100 if r["peer"] != "direct" else None
    ngx = {(r["scenario"], r["conns"]): r for r in rows if r["peer"] == "nginx"}
    direct = {(r["scenario"], r["conns"]): r for r in rows if r["peer"] == "direct"}
    out = []
    for r in rows:
        k = (r["scenario"], r["conns"])
        n, b = ngx.get(k), direct.get(k)
        out.append([r["peer"], r["scenario"], r["conns"], f"{r['rps']:.0f}", fmt(r["px_us"]),
                    fmt(ratio(r["px_us"], n and n["px_us"]), 2), fmt(r["p50"], 3), fmt(r["p99"], 3),
                    r["non2xx"] + r["sockerr"], f"{r['other_pct']:.0f}",
                    r.get("idle_busy_pct", "-")])
    text = f"## {title}\n\n"
    meta = os.path.join(d, "meta.txt")
    if os.path.exists(meta):
        text += "```\n" + open(meta).read().rstrip() + "\n```\n\n"
    text += md_table(["row", "scenario", "conns", "req/s", "proxy CPU µs/req", "× nginx",
                      "p50 ms", "p99 ms", "errors", "other load %", "busy before %"], out) + "\n"
    return text, rows


def latency_section(res):
    d = os.path.join(res, "latency")
    meta = os.path.join(d, "runs.jsonl")
    if not os.path.exists(meta):
        return "", {}
    rows = []
    for line in open(meta):
        m = json.loads(line)
        raw = open(os.path.join(d, "raw", m["id"] + ".txt")).read()
        j = json.loads(raw[raw.index("{"):])
        lp = j.get("latencyPercentiles", {})
        codes = j.get("statusCodeDistribution", {})
        total = sum(codes.values())
        ok = sum(v for k, v in codes.items() if k.startswith("2"))
        pct = {k: (lp.get(k) or 0) * 1e3 for k in ("p50", "p99", "p99.9")}
        rows.append({"peer": m["peer"], "conns": m["conns"], "rps": j["summary"].get("requestsPerSec", 0),
                     "requests": total, "non2xx": total - ok, **pct,
                     "px_us": (m["proxy_ticks"] / m["hz"] / max(total, 1) * 1e6) if m["proxy_ticks"] else None,
                     "quiet": m.get("idle_busy_pct")})
    direct = {r["conns"]: r for r in rows if r["peer"] == "direct"}
    out = []
    for r in rows:
        b = direct.get(r["conns"])
        add = {k: (r[k] - b[k]) if b and r["peer"] != "direct" else None for k in ("p50", "p99", "p99.9")}
        r["added"] = add
        out.append([r["peer"], r["conns"], f"{r['rps']:.0f}", r["non2xx"], fmt(r["p50"], 3), fmt(r["p99"], 3),
                    fmt(r["p99.9"], 3), fmt(add["p50"], 3), fmt(add["p99"], 3), fmt(add["p99.9"], 3),
                    fmt(r["px_us"]), r["quiet"]])
    text = "## Fixed-rate latency (oha, --latency-correction)\n\n"
    mt = os.path.join(d, "meta.txt")
    if os.path.exists(mt):
        text += "```\n" + open(mt).read().rstrip() + "\n```\n\n"
    text += md_table(["row", "conns", "req/s", "non-2xx", "p50 ms", "p99 ms", "p99.9 ms",
                      "added p50 ms", "added p99 ms", "added p99.9 ms", "proxy CPU µs/req",
                      "busy before %"], out) + "\n"
    return text, {r["peer"]: r for r in rows}


def own_table(rows, base_row="nginx"):
    base = {r["conns"]: r for r in rows if r.get("row") == base_row}
    direct = {r["conns"]: r for r in rows if r.get("row") == "direct"}
    out = []
    for r in rows:
        n, b = base.get(r["conns"]), direct.get(r["conns"])
        pool = r["pool"]
        pool_txt = "-" if not pool else (f"{pool[1]} sent, {'WRAPPED' if pool[2] else 'each once'}")
        out.append([r["id"], f"{r['rps']:.0f}", fmt(r["px_us"]), fmt(ratio(r["px_us"], n and n["px_us"]), 2),
                    fmt(r["up_us"]), fmt(r["p50"], 3), fmt(r["p99"], 3),
                    fmt(ratio(r["p99"], b and b["p99"]), 2), r["errors"],
                    f"{r['vmhwm_kib'] / 1024:.1f}" if r["vmhwm_kib"] else "-",
                    "-" if r["hit_rate"] is None else f"{100 * r['hit_rate']:.1f}",
                    r["signatures"] if r["proxy_ticks"] and r["row"].startswith("cg") else "-",
                    deferred(r), pool_txt, f"{r['other_pct']:.0f}", r["quiet_pct"]])
    return md_table(["row", "req/s", "proxy CPU µs/req", f"× {base_row}", "upstream µs/req", "p50 ms",
                     "p99 ms", "p99 × direct", "errors", "peak RSS MiB", "cache hit %",
                     "signatures verified", "not cached", "token pool", "other load %", "busy before %"], out)


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def growth(res):
    d = os.path.join(res, "growth")
    rows = load_runs(d)
    if not rows:
        return ""
    text = "## How cost grows\n\n"
    mt = os.path.join(d, "meta.txt")
    if os.path.exists(mt):
        text += "```\n" + open(mt).read().rstrip() + "\n```\n\n"
    tok = [r for r in rows if r.get("row") == "cg-tokens"]
    ngx64 = next((r for r in rows if r.get("row") == "nginx-conns" and r["conns"] == 64), None)
    if tok:
        write_csv(os.path.join(d, "growth-tokens.csv"), ["tokens", "us_per_req", "hit_rate", "rps", "vmhwm_kib", "nginx_us_per_req"],
                  [[r["tokens"], f"{r['px_us']:.2f}", "" if r["hit_rate"] is None else f"{r['hit_rate']:.4f}",
                    f"{r['rps']:.0f}", r["vmhwm_kib"], f"{ngx64['px_us']:.2f}" if ngx64 else ""] for r in tok])
        text += "### Distinct live tokens (RS256, 64 connections, round-robin over N tokens)\n\n"
        text += md_table(["tokens", "proxy CPU µs/req", "× nginx (c64, same run)", "cache hit %", "signatures verified",
                          "not cached", "req/s", "peak RSS MiB", "errors"],
                         [[r["tokens"], fmt(r["px_us"]), fmt(ratio(r["px_us"], ngx64 and ngx64["px_us"]), 2),
                           "-" if r["hit_rate"] is None else f"{100 * r['hit_rate']:.1f}", r["signatures"], deferred(r),
                           f"{r['rps']:.0f}", f"{r['vmhwm_kib'] / 1024:.1f}", r["errors"]] for r in tok]) + "\n\n"
    bodies = {}
    for r in rows:
        if r.get("row") in ("nginx-body", "cg-body"):
            bodies.setdefault(r["bytes"], {})[r["row"]] = r
    if bodies:
        out, csvrows = [], []
        for size in sorted(bodies):
            n, c = bodies[size].get("nginx-body"), bodies[size].get("cg-body")
            out.append([size, fmt(n and n["px_us"]), fmt(c and c["px_us"]), fmt(ratio(c and c["px_us"], n and n["px_us"]), 2),
                        f"{c['rps']:.0f}" if c else "-", f"{c['vmhwm_kib'] / 1024:.1f}" if c else "-",
                        (n["errors"] if n else 0) + (c["errors"] if c else 0)])
            csvrows.append([size, f"{n['px_us']:.2f}" if n else "", f"{c['px_us']:.2f}" if c else "",
                            c["vmhwm_kib"] if c else "", f"{c['rps']:.0f}" if c else ""])
        write_csv(os.path.join(d, "growth-bodies.csv"), ["bytes", "nginx_us_per_req", "cg_us_per_req", "cg_vmhwm_kib", "cg_rps"], csvrows)
        text += "### Body size (document read, 16 connections)\n\n"
        text += md_table(["bytes", "nginx µs/req", "cosmogate µs/req", "× nginx", "cosmogate req/s",
                          "cosmogate peak RSS MiB", "errors"], out) + "\n\n"
    conns = {}
    for r in rows:
        if r.get("row") in ("nginx-conns", "cg-conns"):
            conns.setdefault(r["conns"], {})[r["row"]] = r
    if conns:
        out, csvrows = [], []
        for c in sorted(conns):
            n, g = conns[c].get("nginx-conns"), conns[c].get("cg-conns")
            out.append([c, fmt(n and n["px_us"]), fmt(g and g["px_us"]), fmt(ratio(g and g["px_us"], n and n["px_us"]), 2),
                        f"{g['rps']:.0f}" if g else "-", fmt(g and g["p99"], 2), f"{g['vmhwm_kib'] / 1024:.1f}" if g else "-",
                        (n["errors"] if n else 0) + (g["errors"] if g else 0)])
            csvrows.append([c, f"{n['px_us']:.2f}" if n else "", f"{g['px_us']:.2f}" if g else "",
                            g["vmhwm_kib"] if g else "", n["vmhwm_kib"] if n else ""])
        write_csv(os.path.join(d, "growth-conns.csv"), ["conns", "nginx_us_per_req", "cg_us_per_req", "cg_vmhwm_kib", "nginx_vmhwm_kib"], csvrows)
        text += "### Concurrent connections (closed loop, repeated RS256 token)\n\n"
        text += md_table(["connections", "nginx µs/req", "cosmogate µs/req", "× nginx", "cosmogate req/s",
                          "cosmogate p99 ms", "cosmogate peak RSS MiB", "errors"], out) + "\n\n"
    idle_rows = []
    for name in ("nginx", "cg", "cg-tls"):
        p = os.path.join(d, f"idle-{name}.csv")
        if not os.path.exists(p):
            continue
        pts = [(int(a), int(b)) for a, b in (l.strip().split(",") for l in open(p) if l[0].isdigit())]
        if len(pts) < 2:
            continue
        # least-squares slope of RSS over connections
        n = len(pts)
        mx = sum(x for x, _ in pts) / n
        my = sum(y for _, y in pts) / n
        sxx = sum((x - mx) ** 2 for x, _ in pts)
        slope = sum((x - mx) * (y - my) for x, y in pts) / sxx if sxx else 0
        idle_rows.append([name, " ".join(f"{x}:{y / 1024:.1f}" for x, y in pts), f"{slope:.1f}"])
    if idle_rows:
        text += "### Memory per idle keep-alive connection (fresh process, one request per connection, then idle)\n\n"
        text += md_table(["server", "connections:RSS MiB", "KiB per idle connection (fit)"], idle_rows) + "\n\n"
        write_csv(os.path.join(d, "idle-slopes.csv"), ["server", "points", "kib_per_conn"], idle_rows)
    return text


def main():
    res, peers_copy = sys.argv[1], sys.argv[2]
    parts = [f"# Benchmark run {os.path.basename(os.path.abspath(res))}\n",
             "CPU figures: the metered proxy's user+system CPU (from /proc, clock ticks) per completed request. "
             "Ratios compare rows of the same run. `other load %` is CPU used by nothing metered (other "
             "work on the machine), as % of all cores; `busy before %` is the machine's load measured by the quiet "
             "gate just before the row.\n"]
    t, _ = harness_section(res, peers_copy, "peers", "Peer harness matrix (wrk, closed loop)")
    parts.append(t)
    t, _ = latency_section(res)
    parts.append(t)
    extra = load_runs(os.path.join(res, "extra"))
    if extra:
        parts.append("## Rows the harness lacks (wrk, one run)\n")
        mt = os.path.join(res, "extra", "meta.txt")
        if os.path.exists(mt):
            parts.append("```\n" + open(mt).read().rstrip() + "\n```\n")
        parts.append(own_table(extra) + "\n")
        sp = os.path.join(res, "extra", "openssl-speed.txt")
        if os.path.exists(sp):
            parts.append("Signature floor on the proxy core, same run (`openssl speed`):\n\n```\n" + open(sp).read().rstrip() + "\n```\n")
        cb = os.path.join(res, "extra", "cryptobench.txt")
        if os.path.exists(cb):
            parts.append("The harness's Rust crypto floor (cryptobench, pinned to the proxy core, right after the rows):\n\n```\n"
                         + open(cb).read().rstrip() + "\n```\n")
    parts.append(growth(res))
    cs = os.path.join(res, "check", "credential-swap.txt")
    if os.path.exists(cs):
        parts.append("## Credential swap\n\n```\n" + open(cs).read().rstrip() + "\n```\n")
    text = "\n".join(p for p in parts if p)
    with open(os.path.join(res, "report.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
