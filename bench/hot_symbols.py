#!/usr/bin/env python3
"""Write link/hot-symbols.txt: the functions a redlab binary runs in the
workloads people time (perf's headline and RSS runs, `--version`, a default
perf run, `check` against a spawned lab), hottest workload first.

build.rs hands that file to the linker (lld's --symbol-ordering-file), which
lays those functions out next to each other. The kernel maps code 64 KiB at
a time around each page fault (fault-around), so the ~1.5 MiB of functions a
perf run executes, scattered over the dist build's 10.5 MiB of text, cost
7.6 MiB of RSS and ~120 faults at every start; packed, 1.7 MiB and 31
(docs/benchmarks.md, "Start-up, the headline and memory").

    cargo build --profile dist && python3 bench/hot_symbols.py target/dist/redlab

Needs valgrind (callgrind records every function executed, in every thread)
and redis-server. Regenerate it when the start-up or perf path changes a lot;
a stale entry is only skipped by the linker, never an error.
"""
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

binary = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/dist/redlab")
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
out_path = os.path.join(root, "link", "hot-symbols.txt")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def functions(cg_file, obj):
    """Mangled names of the functions callgrind saw run inside `obj`."""
    obs, fns, cur, used = {}, {}, None, []
    for line in open(cg_file):
        m = re.match(r"^(c?ob|c?fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if not m:
            continue
        kind, ident, name = m.groups()
        if kind.endswith("ob"):
            if name:
                obs[ident] = name
            if kind == "ob":
                cur = obs[ident]
        else:
            if name:
                fns[ident] = name
            if kind == "fn" and cur == obj and fns[ident] not in used:
                used.append(fns[ident])
    return used


port = free_port()
tmp = tempfile.mkdtemp(prefix="redlab-hot-")
server = subprocess.Popen(
    ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
     "--appendonly", "no", "--maxclients", "4000", "--dir", tmp],
    stdout=subprocess.DEVNULL)
url = f"redis://127.0.0.1:{port}"
perf = ["--master", url, "-q", "--format", "json", "perf", "-d", "3", "--keep-keys"]
runs = [
    ("headline", perf + ["-n", "1000", "-P", "1000", "--rounds", "1", "--warmup", "0"]),
    ("version", ["--version"]),
    ("c1", perf + ["-n", "20000", "-P", "16", "-c", "1", "--rounds", "1", "--warmup", "0"]),
    ("c1000", perf + ["-n", "4000", "-P", "1", "-c", "1000", "--rounds", "1", "--warmup", "0"]),
    ("default perf", ["--master", url, "perf", "-n", "20000"]),
    ("check", ["--spawn", "check"]),
]
order = []
try:
    for _ in range(200):  # until the server answers
        ping = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True)
        if ping.stdout.strip() == "PONG":
            break
        time.sleep(0.05)
    for name, args in runs:
        cg = os.path.join(tmp, "cg.out")
        subprocess.run(["redis-cli", "-p", str(port), "flushall"], stdout=subprocess.DEVNULL)
        r = subprocess.run(["valgrind", "--tool=callgrind", "--demangle=no",
                            f"--callgrind-out-file={cg}", binary, *args],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode not in (0, 1):
            sys.exit(f"{name}: exited {r.returncode}\n{r.stderr[-2000:]}")
        # Callgrind names a function without a symbol by its address: no
        # use to the linker.
        new = [f for f in functions(cg, binary) if f not in order and not f.startswith("0x")]
        order += new
        print(f"{name}: {len(new)} more functions ({len(order)} in all)")
finally:
    server.terminate()
    server.wait()
with open(out_path, "w") as f:
    f.write("\n".join(order) + "\n")
print(f"wrote {out_path}")
