#!/usr/bin/env python3
"""The import graph between redlab's top-level modules, from `crate::` paths
(use lines, nested use groups and inline paths such as `crate::x::f()`
written without a `use`), and the circles in it (strongly connected
components of more than one module). Exits 1 when there is a circle: .ci/run
runs it. Usage: python3 bench/module_graph.py [src]"""
import os, re, sys
from collections import defaultdict

src = sys.argv[1] if len(sys.argv) > 1 else "src"
top = sorted({(f[:-3] if f.endswith(".rs") else f) for f in os.listdir(src)} - {"lib", "main"})
edges = defaultdict(set)
pat = re.compile(r"crate::(\w+)|crate::\{")


def group_heads(text, start):
    """The first path segment of each item of a `crate::{...}` group that
    opens at text[start] (nested groups such as `a::{b, c}` count as `a`)."""
    depth, item, heads, i = 0, "", [], start
    while i < len(text):
        ch = text[i]
        if ch == "{":
            depth += 1
            if depth == 1:
                i += 1
                continue
        elif ch == "}":
            depth -= 1
            if depth == 0:
                heads.append(item)
                break
        if depth == 1 and ch == ",":
            heads.append(item)
            item = ""
        elif depth == 1:
            item += ch
        i += 1
    return [h.strip().split("::")[0].strip() for h in heads if h.strip()]
for root, _, files in os.walk(src):
    for f in files:
        if not f.endswith(".rs"):
            continue
        path = os.path.join(root, f)
        rel = os.path.relpath(path, src).split(os.sep)
        me = rel[0][:-3] if rel[0].endswith(".rs") else rel[0]
        if me in ("lib", "main"):
            continue
        text = open(path, encoding="utf-8").read()
        for m in pat.finditer(text):
            names = [m.group(1)] if m.group(1) else group_heads(text, m.end() - 1)
            for n in names:
                if n in top and n != me:
                    edges[me].add(n)

# Tarjan's strongly connected components.
index, low, stack, on, sccs, i = {}, {}, [], set(), [], [0]
def visit(v):
    index[v] = low[v] = i[0]; i[0] += 1; stack.append(v); on.add(v)
    for w in edges[v]:
        if w not in index:
            visit(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        c = []
        while True:
            w = stack.pop(); on.discard(w); c.append(w)
            if w == v: break
        sccs.append(sorted(c))
for v in top:
    if v not in index:
        visit(v)
circles = [c for c in sccs if len(c) > 1]
for v in top:
    print(f"{v:12} -> {', '.join(sorted(edges[v])) or '-'}")
print(f"\n{len(top)} top-level modules, {len(circles)} circle(s)")
for c in circles:
    print("circle:", " <-> ".join(c))
sys.exit(1 if circles else 0)
