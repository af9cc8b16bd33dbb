#!/usr/bin/env python3
"""Peak RSS of two redlab binaries and redis-benchmark, interleaved: 100k
SETs at each connection count (-P 16 at -c 1, else -P 1), each command run
once per round in turn; peak RSS as /usr/bin/time %M reports it. Medians in MiB, and each to redis-benchmark's.

    A=/tmp/redlab-before B=target/dist/redlab PORT=44240 \
        taskset -c 1 python3 bench/rss_ab.py 3 1 1000 5000

Needs a redis-server on 127.0.0.1:PORT with maxclients above the largest
count (flushed before every run: use a throwaway one). Arguments: rounds,
then the connection counts.
"""
import os
import statistics
import subprocess
import sys
import time

port = os.environ.get("PORT", "44240")
url = f"redis://127.0.0.1:{port}"
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
conns = [int(c) for c in sys.argv[2:]] or [1, 1000, 5000]


def idle():
    """The previous client's connections closed on the server."""
    for _ in range(400):
        out = subprocess.run(["redis-cli", "-p", port, "info", "clients"],
                             capture_output=True, text=True).stdout
        n = next(int(l.split(":")[1]) for l in out.splitlines() if l.startswith("connected_clients"))
        if n <= 1:
            return
        time.sleep(0.05)


def peak_mib(cmd):
    """Peak RSS of `cmd` by /usr/bin/time (a small C parent: a child forked
    from Python keeps Python's pages in its high-water mark across exec)."""
    subprocess.run(["redis-cli", "-p", port, "flushall"], stdout=subprocess.DEVNULL, check=True)
    idle()
    out = "/tmp/rss_ab.time"
    r = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", out, *cmd],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if r.returncode != 0:
        sys.exit(f"exited {r.returncode}: {' '.join(cmd)}")
    return int(open(out).read().split()[-1]) / 1024


print(f"| connections | A | B | redis-benchmark | A / rb | B / rb | B - rb |")
print("|---:|---:|---:|---:|---:|---:|---:|")
for c in conns:
    p = "16" if c == 1 else "1"
    perf = ["--master", url, "-q", "--format", "json", "perf", "-n", "100000", "-P", p,
            "-c", str(c), "-d", "3", "--rounds", "1", "--warmup", "0", "--keep-keys"]
    cmds = {
        "A": [os.environ["A"], *perf],
        "B": [os.environ["B"], *perf],
        "rb": ["redis-benchmark", "-h", "127.0.0.1", "-p", port, "-t", "set", "-n", "100000",
               "-P", p, "-c", str(c), "-d", "3", "-q"],
    }
    got = {k: [] for k in cmds}
    for _ in range(rounds):
        for k, cmd in cmds.items():
            got[k].append(peak_mib(cmd))
    m = {k: statistics.median(v) for k, v in got.items()}
    print(f"| {c} | {m['A']:.1f} | {m['B']:.1f} | {m['rb']:.1f} | {m['A'] / m['rb']:.2f}x "
          f"| {m['B'] / m['rb']:.2f}x | {m['B'] - m['rb']:+.1f} |")
