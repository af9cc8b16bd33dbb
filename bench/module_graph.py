#!/usr/bin/env python3
"""The import graph between redlab's top-level modules, from `crate::` paths
(use lines, nested use groups and inline paths such as `crate::x::f()`
written without a `use`), and the circles in it (strongly connected
components of more than one module). Then the subcommands: a module under
`src/cmd/<x>` that imports `src/cmd/<y>` (`crate::cmd::y`, a `crate::cmd::{..}`
group, `use crate::cmd::*`, or `super::y` from a subcommand's own folder)
is an edge between commands; what two subcommands share belongs in
`src/probe/`. Exits 1 when there is a circle, or an edge between commands
that ALLOWED does not name: .ci/run runs it.
Usage: python3 bench/module_graph.py [src]"""
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

# Subcommands that import other subcommands, with why each is kept (none:
# what two subcommands share is a probe; `redlab report` is app::rerender,
# the cluster runner is `sharded`).
ALLOWED: dict = {}
cmd_dir = os.path.join(src, "cmd")
commands = sorted({(f[:-3] if f.endswith(".rs") else f) for f in os.listdir(cmd_dir)} - {"mod"})
cmd_pat = re.compile(r"crate::cmd::(?:(\w+)|(\{)|\*)")
cmd_edges = defaultdict(set)
for root, _, files in os.walk(cmd_dir):
    for f in files:
        if not f.endswith(".rs"):
            continue
        path = os.path.join(root, f)
        rel = os.path.relpath(path, cmd_dir).split(os.sep)
        if rel == ["mod.rs"]:
            continue
        me = rel[0][:-3] if rel[0].endswith(".rs") else rel[0]
        text = open(path, encoding="utf-8").read()
        names = []
        for m in cmd_pat.finditer(text):
            if m.group(1):
                names.append(m.group(1))
            elif m.group(2):
                names.extend(group_heads(text, m.end() - 1))
            else:
                names.extend(commands)
        # `super::` is cmd/ itself from cmd/<x>.rs and cmd/<x>/mod.rs,
        # `super::super::` from cmd/<x>/<file>.rs.
        up = "super::" if len(rel) == 1 or rel[-1] == "mod.rs" else "super::super::"
        names.extend(re.findall(r"(?<!\w)" + re.escape(up) + r"(\w+)", text))
        for n in names:
            if n in commands and n != me:
                cmd_edges[me].add(n)
unallowed = []
print("\nsubcommands importing subcommands:")
for x in sorted(cmd_edges):
    for y in sorted(cmd_edges[x]):
        why = ALLOWED.get((x, y)) or ALLOWED.get((x, "*"))
        print(f"  cmd/{x} -> cmd/{y}: {why or 'NOT ALLOWED (share it through src/probe/)'}")
        if not why:
            unallowed.append((x, y))
print(f"{len(unallowed)} import(s) between subcommands outside the allow-list")
sys.exit(1 if circles or unallowed else 0)
