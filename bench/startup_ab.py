#!/usr/bin/env python3
"""Two redlab binaries and redis-benchmark, interleaved: the headline run
(1000 SETs in one -P 1000 batch, whole process) and `--version`, each
command run once per round in turn, so that a machine whose load moves
(other people compiling) moves all of them alike. hyperfine runs each
command's runs in one block, which on a shared machine can put a
difference of load between two blocks larger than the one measured.

    A=/tmp/redlab-before B=target/dist/redlab PORT=44240 \
        taskset -c 1 python3 bench/startup_ab.py 60

Needs a redis-server on 127.0.0.1:PORT (flushed before every run: use a
throwaway one). Pin the whole script with taskset for a placement (the
children inherit it). Prints medians (ms) and the ratios to redis-benchmark.
"""
import os
import statistics
import subprocess
import sys
import time

port = os.environ.get("PORT", "44240")
url = f"redis://127.0.0.1:{port}"
perf = ["--master", url, "-q", "--format", "json", "perf", "-n", "1000", "-P", "1000",
        "--rounds", "1", "--warmup", "0"]
cmds = {
    "A headline": [os.environ["A"], *perf],
    "B headline": [os.environ["B"], *perf],
    "redis-benchmark": ["redis-benchmark", "-h", "127.0.0.1", "-p", port, "-t", "set", "-n",
                        "1000", "-P", "1000", "-c", "1", "-d", "3", "-q"],
    "A --version": [os.environ["A"], "--version"],
    "B --version": [os.environ["B"], "--version"],
    "/bin/true": ["/bin/true"],
}
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 60
times = {k: [] for k in cmds}
with open(os.devnull, "w") as null:
    for _ in range(rounds):
        for name, cmd in cmds.items():
            subprocess.run(["redis-cli", "-p", port, "flushall"], stdout=null, check=True)
            t = time.perf_counter()
            r = subprocess.run(cmd, stdout=null, stderr=null)
            times[name].append((time.perf_counter() - t) * 1000)
            if r.returncode != 0:
                sys.exit(f"{name} exited {r.returncode}: {' '.join(cmd)}")
m = {k: statistics.median(v) for k, v in times.items()}
for k, v in m.items():
    print(f"{k:16} {v:6.2f} ms")
rb = m["redis-benchmark"]
print(f"headline / redis-benchmark: A {m['A headline'] / rb:.2f}x, B {m['B headline'] / rb:.2f}x")
print(f"--version - /bin/true: A {m['A --version'] - m['/bin/true']:+.2f} ms, "
      f"B {m['B --version'] - m['/bin/true']:+.2f} ms")
