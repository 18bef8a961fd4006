#!/usr/bin/env python3
"""Growth curves as PNGs for docs/performance.md.

usage: plot.py RESULTS_DIR OUT_DIR [MICRO_DATA_DIR]

Reads RESULTS_DIR/growth/{growth-tokens,growth-bodies,growth-conns}.csv and idle-*.csv (written
by bench/lib/report.py from one run of bench/peers.sh growth), and, when present,
MICRO_DATA_DIR/growth-rules.csv and growth-issuers.csv (criterion results, columns
`n,ns_per_op`, optionally `case`, one curve per case). Writes one PNG per curve into OUT_DIR; a missing input skips its plot.
"""
import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def rows(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return [r for r in csv.DictReader(f) if not next(iter(r.values()), "").startswith("#")]


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def save(fig, out, name, run):
    fig.text(0.99, 0.01, f"run {run}", ha="right", va="bottom", fontsize=7, color="grey")
    fig.tight_layout()
    path = os.path.join(out, name)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}")


def size_label(b):
    b = int(b)
    return f"{b // 1048576} MiB" if b >= 1048576 else f"{b // 1024} KiB"


def main():
    res, out = sys.argv[1], sys.argv[2]
    micro = sys.argv[3] if len(sys.argv) > 3 else None
    run = os.path.basename(os.path.abspath(res))
    g = os.path.join(res, "growth")
    os.makedirs(out, exist_ok=True)

    t = rows(os.path.join(g, "growth-tokens.csv"))
    if t:
        fig, ax = plt.subplots(figsize=(7, 4))
        x = [num(r["tokens"]) for r in t]
        ax.plot(x, [num(r["us_per_req"]) for r in t], "o-", label="cosmogate CPU µs/request")
        ngx = num(t[0].get("nginx_us_per_req"))
        if ngx:
            ax.axhline(ngx, color="grey", ls="--", label="nginx pass-through (same run)")
        ax.set_xscale("log")
        ax.set_xlabel("distinct live tokens (round-robin)")
        ax.set_ylabel("proxy CPU µs per request")
        ax.set_ylim(bottom=0)
        ax2 = ax.twinx()
        ax2.plot(x, [100 * (num(r["hit_rate"]) or 0) for r in t], "s:", color="tab:green", label="token-cache hit %")
        ax2.set_ylabel("token-cache hit %")
        ax2.set_ylim(0, 105)
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, loc="center left", fontsize=8)
        ax.set_title("Cost per request vs distinct live tokens (RS256, 64 connections)")
        save(fig, out, "growth-tokens.png", run)

    b = rows(os.path.join(g, "growth-bodies.csv"))
    if b:
        fig, (ax, axm) = plt.subplots(1, 2, figsize=(10, 4))
        x = [num(r["bytes"]) for r in b]
        ax.plot(x, [num(r["cg_us_per_req"]) for r in b], "o-", label="cosmogate")
        ax.plot(x, [num(r["nginx_us_per_req"]) for r in b], "s--", label="nginx pass-through")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(x, [size_label(v) for v in x], rotation=30)
        ax.set_xlabel("document size")
        ax.set_ylabel("proxy CPU µs per request")
        ax.legend(fontsize=8)
        ax.set_title("Cost per request vs body size")
        axm.plot(x, [num(r["cg_vmhwm_kib"]) / 1024 for r in b], "o-", color="tab:red")
        axm.set_xscale("log")
        axm.set_xticks(x, [size_label(v) for v in x], rotation=30)
        axm.set_ylim(bottom=0)
        axm.set_xlabel("document size")
        axm.set_ylabel("cosmogate peak RSS (VmHWM) MiB")
        axm.set_title("Peak memory vs body size (16 connections)")
        save(fig, out, "growth-bodies.png", run)

    c = rows(os.path.join(g, "growth-conns.csv"))
    idle = {name: [(int(a), int(v)) for a, v in ((r["n"], r["rss_kib"]) for r in rows(os.path.join(g, f"idle-{name}.csv")))]
            for name in ("cg", "cg-tls", "nginx")}
    if c or any(idle.values()):
        fig, (ax, axm) = plt.subplots(1, 2, figsize=(10, 4))
        if c:
            x = [num(r["conns"]) for r in c]
            ax.plot(x, [num(r["cg_us_per_req"]) for r in c], "o-", label="cosmogate")
            ax.plot(x, [num(r["nginx_us_per_req"]) for r in c], "s--", label="nginx pass-through")
            ax.set_xscale("log")
            ax.set_xticks(x, [str(int(v)) for v in x])
            ax.set_ylim(bottom=0)
            ax.set_xlabel("concurrent connections (closed loop)")
            ax.set_ylabel("proxy CPU µs per request")
            ax.legend(fontsize=8)
            ax.set_title("Cost per request vs connections")
        for name, label in (("cg", "cosmogate (plain HTTP)"), ("cg-tls", "cosmogate (TLS)"), ("nginx", "nginx")):
            pts = idle.get(name)
            if pts:
                axm.plot([p[0] for p in pts], [(p[1] - pts[0][1]) / 1024 for p in pts], "o-", label=label)
        axm.set_xlabel("idle keep-alive connections held")
        axm.set_ylabel("RSS growth MiB")
        axm.legend(fontsize=8)
        axm.set_title("Memory of idle connections")
        save(fig, out, "growth-conns.png", run)

    if micro:
        for name, xlabel in (("growth-rules", "policy rules"), ("growth-issuers", "configured issuers")):
            m = rows(os.path.join(micro, f"{name}.csv"))
            if not m:
                print(f"no {name}.csv in {micro}: skipped")
                continue
            fig, ax = plt.subplots(figsize=(7, 4))
            # One line per `case` column value (a file without it is one curve).
            cases = {}
            for r in m:
                cases.setdefault(r.get("case") or "all", []).append(r)
            for case, points in sorted(cases.items()):
                points.sort(key=lambda r: num(r["n"]))
                x = [num(r["n"]) for r in points]
                ax.plot(x, [num(r["ns_per_op"]) / 1000 for r in points], "o-", label=case)
            ax.set_xscale("log")
            # Log scale: the curves span three orders of magnitude.
            ax.set_yscale("log")
            if len(cases) > 1:
                ax.legend(fontsize=7)
            ax.set_xlabel(xlabel)
            ax.set_ylabel("µs per operation (criterion)")
            ax.set_title(f"Cost vs {xlabel} (bench/micro)")
            fig.text(0.99, 0.01, "bench/micro/data", ha="right", va="bottom", fontsize=7, color="grey")
            fig.tight_layout()
            path = os.path.join(out, f"{name}.png")
            fig.savefig(path, dpi=110)
            plt.close(fig)
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
