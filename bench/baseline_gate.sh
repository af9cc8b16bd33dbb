#!/usr/bin/env bash
# The acceptance run of perf --baseline (issue 9, item 9): with nothing
# changed, N consecutive gated runs must all pass; against a master made
# slower for real (appendonly yes, appendfsync always), every one must fail.
#
#   bash bench/baseline_gate.sh            # 10 runs each way
#   RUNS=5 SHAPE="--duration 1s -P 1 -c 10" bash bench/baseline_gate.sh
#   TOL=10 bash bench/baseline_gate.sh     # --tolerance (default 20, redlab's default)
#
# Starts its own redis-server on a free loopback port (no persistence), stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-10}
SHAPE=${SHAPE:---duration 1s --rounds 5 -P 1 -c 10}
TOL=${TOL:-20}
cargo build --release --quiet
BIN=./target/release/redlab
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
  --daemonize no --logfile "$dir/redis.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.05; done
M="redis://127.0.0.1:$port"
# shellcheck disable=SC2086
$BIN --master "$M" --expect-replicas 0 -q --format json --output "$dir/base.json" perf $SHAPE >/dev/null
echo "baseline: $(python3 -c "import json;d=json.load(open('$dir/base.json'))['details'];print(round(d['throughput_ops_per_sec']),'ops/s, p99',d['latency']['p99_us'],'us')")"
gate() {
  # shellcheck disable=SC2086
  $BIN --master "$M" --expect-replicas 0 -q --format json perf $SHAPE --baseline "$dir/base.json" --tolerance "$TOL" > "$dir/run.json" || true
  python3 - "$dir/run.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
b = r["details"]["baseline"]
print(f'{"FAIL" if b["regressed"] else "pass"}  ops {b["ops_change_pct"]:+6.1f} % (noise ±{b["ops_noise_pct"]:.1f})  p99 {b["p99_change_pct"]:+6.1f} % (noise ±{b["p99_noise_pct"]:.1f})')
PY
}
echo "nothing changed ($RUNS runs; every one must pass):"
same_fail=0
for i in $(seq "$RUNS"); do line=$(gate); echo "  $i  $line"; [[ $line == FAIL* ]] && same_fail=$((same_fail+1)); done
redis-cli -p "$port" config set appendonly yes >/dev/null
redis-cli -p "$port" config set appendfsync always >/dev/null
# Let the AOF rewrite that appendonly starts finish before measuring.
until [ "$(redis-cli -p "$port" info persistence | tr -d '\r' | awk -F: '/aof_rewrite_in_progress/{print $2}')" = 0 ]; do sleep 0.1; done
echo "appendonly yes, appendfsync always ($RUNS runs; every one must fail):"
slow_pass=0
for i in $(seq "$RUNS"); do line=$(gate); echo "  $i  $line"; [[ $line == pass* ]] && slow_pass=$((slow_pass+1)); done
echo "result: $same_fail false alarm(s) of $RUNS, $slow_pass missed regression(s) of $RUNS"
[ "$same_fail" = 0 ] && [ "$slow_pass" = 0 ]
