#!/usr/bin/env bash
# Regenerates the saved reports the golden tests render (tests/golden/text.rs):
# every subcommand run once against a throwaway lab, saved as JSON. Run from
# the repository root after a change to a report's shape; then
# UPDATE_GOLDEN=1 cargo test --test golden rewrites the expected renderings.
set -euo pipefail
cargo build -q
r=target/debug/redlab
out=tests/golden/reports
state=$(mktemp -d)
port=${REDLAB_GOLDEN_PORT:-26500}
trap '$r lab --state-dir "$state" down >/dev/null 2>&1 || true; rm -rf "$state"' EXIT
$r lab --state-dir "$state" up --base-port "$port" --replicas 3 >/dev/null
# Some data of "the user" for keycount and compare to count and compare.
for i in $(seq 5000); do echo "SET user:$i value-$i"; done | redis-cli -p "$port" --pipe >/dev/null
export REDLAB_MASTER=redis://127.0.0.1:$port
export REDLAB_REPLICAS=redis://127.0.0.1:$((port + 1)),redis://127.0.0.1:$((port + 2)),redis://127.0.0.1:$((port + 3))
j() { local name=$1; shift; "$r" "$@" --format json --output "$out/$name.json" >/dev/null 2>&1 || true; }
j replicate-check replicate-check
j keycount keycount
j perf perf -n 20000 --rounds 3 --pipeline 16
j ttl-watch ttl-watch --ttl 2s
j stats stats
j demo demo
j check check
j compare compare
j clean clean
j lab lab --state-dir "$state" status
# A topology with a fault: one replica stopped, so the failing paths render too.
redis-cli -p $((port + 3)) shutdown nosave >/dev/null 2>&1 || true
j replicate-check-fail replicate-check
j check-fail check
echo "saved: $(ls "$out"/*.json | wc -l) reports in $out"
