#!/usr/bin/env python3
"""Pre-mint a pool of distinct, valid access tokens with the peer harness's keys.

usage: mint_pool.py PEERS_DIR ALG COUNT OUT [--exp-in SECONDS] [--jobs N]

The harness's own minter (PEERS_DIR/mint.py, imported at run time) makes each token, so the
claims are exactly those the harness's rows send (about 1 KB, Entra v2 shaped); every token
carries its own random `uti`, so no two are alike. One token per line in OUT. The pool is
reused while it is still valid: when OUT exists with COUNT lines, was minted with the current
keys (same jwks.json) and expires more than an hour from now, nothing is done.
"""
import argparse
import hashlib
import json
import os
import sys
import time
from multiprocessing import Pool


def _mint_chunk(args):
    peers_dir, alg, n, exp_in = args
    sys.path.insert(0, peers_dir)
    import mint  # the harness's minter

    key = mint.load_priv(alg)
    return [mint.mint(alg, key=key, exp_in=exp_in) for _ in range(n)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("peers_dir")
    ap.add_argument("alg", choices=["RS256", "ES256"])
    ap.add_argument("count", type=int)
    ap.add_argument("out")
    ap.add_argument("--exp-in", type=int, default=6 * 3600)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    a = ap.parse_args()

    jwks = os.path.join(a.peers_dir, "keys", "jwks.json")
    with open(jwks, "rb") as f:
        keys_id = hashlib.sha256(f.read()).hexdigest()[:16]
    meta_path = a.out + ".meta.json"
    if os.path.exists(a.out) and os.path.exists(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
        if (meta.get("keys") == keys_id and meta.get("count") == a.count
                and meta.get("alg") == a.alg and meta.get("expires", 0) > time.time() + 3600):
            print(f"{a.out}: {a.count} {a.alg} tokens still valid, reused")
            return 0

    start = time.time()
    chunk = 2000
    jobs = [(a.peers_dir, a.alg, min(chunk, a.count - i), a.exp_in) for i in range(0, a.count, chunk)]
    tmp = a.out + ".tmp"
    with Pool(a.jobs) as pool, open(tmp, "w") as out:
        for tokens in pool.imap(_mint_chunk, jobs):
            out.writelines(t + "\n" for t in tokens)
    os.replace(tmp, a.out)
    with open(meta_path, "w") as f:
        json.dump({"keys": keys_id, "count": a.count, "alg": a.alg,
                   "expires": int(start) + a.exp_in}, f)
    print(f"{a.out}: {a.count} {a.alg} tokens in {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
