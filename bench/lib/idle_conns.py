#!/usr/bin/env python3
"""Memory per idle keep-alive connection.

usage: idle_conns.py URL TOKEN_FILE PID LEVELS [--tls]

Opens keep-alive connections to URL in steps up to each of LEVELS (comma-separated, rising),
each completing one real request (with the token from TOKEN_FILE) and then staying open and
idle. At each level it waits for the server to settle and prints `n,rss_kib` where rss_kib is
the summed VmRSS of PID and its descendants. All connections are held until the end.
"""
import http.client
import os
import ssl
import sys
import time
import urllib.parse


def tree(pid):
    out = [pid]
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                for child in f.read().split():
                    out.extend(tree(int(child)))
        except OSError:
            pass
    return out


def rss_kib(pid):
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def main():
    url = urllib.parse.urlsplit(sys.argv[1])
    with open(sys.argv[2]) as f:
        token = f.read().strip()
    pid = int(sys.argv[3])
    levels = [int(x) for x in sys.argv[4].split(",")]
    tls = "--tls" in sys.argv[5:]
    ctx = ssl._create_unverified_context() if tls else None  # loopback, self-signed bench cert
    conns = []
    print("n,rss_kib")
    time.sleep(0.5)
    print(f"0,{rss_kib(pid)}", flush=True)
    failures = 0
    for level in levels:
        while len(conns) < level:
            if tls:
                c = http.client.HTTPSConnection(url.hostname, url.port, timeout=10, context=ctx)
            else:
                c = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
            c.request("GET", url.path, headers={"Authorization": f"Bearer {token}"})
            r = c.getresponse()
            r.read()
            if r.status != 200:
                failures += 1
            conns.append(c)
        time.sleep(1.0)
        print(f"{level},{rss_kib(pid)}", flush=True)
    if failures:
        print(f"# {failures} requests did not answer 200", file=sys.stderr)
    for c in conns:
        c.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
