#!/usr/bin/env bash
# Like for like on a Redis Cluster: `redlab perf --cluster --threads 1` (one
# engine thread driving every shard's connections) against
# `redis-benchmark --cluster` (one thread), SET with 3-byte values, at each
# P:C config, with both clients pinned to one CPU (taskset -c $CPU) and
# unpinned. A local cluster of 3 masters (`redlab lab up --cluster`, no
# replicas, no persistence); every master flushed before every run; the two
# tools alternate, ROUNDS runs each, medians printed: ops/s as each tool
# reports it (redlab: the cluster total of its one round) and client CPU
# seconds per million SETs (/usr/bin/time user+sys of the client process).
# -n and -c are totals for both tools.
#
# Environment:
#   REDLAB     the redlab binary (default: built here, --release)
#   BASE_PORT  the lab's first port (default 43100; bus ports are 10000 above)
#   CPU        the CPU the pinned clients share (default 1)
#   N          SETs per run (default 1000000)
#   ROUNDS     runs per tool, placement and config (default 3)
#   CONFIGS    space-separated P:C pairs (default "1:50 16:50")
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-1000000}
ROUNDS=${ROUNDS:-3}
CONFIGS=${CONFIGS:-"1:50 16:50"}
BASE_PORT=${BASE_PORT:-43100}
CPU=${CPU:-1}

if [ -z "${REDLAB:-}" ]; then
    cargo build --release --quiet >&2
    REDLAB="${CARGO_TARGET_DIR:-target}/release/redlab"
fi
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
for tool in redis-server redis-benchmark redis-cli taskset; do
    command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }
done

tmp=$(mktemp -d)
state="$tmp/lab"
cleanup() {
    "$REDLAB" lab down --state-dir "$state" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT

shards=3
"$REDLAB" -q lab up --cluster --shards "$shards" --replicas 0 --base-port "$BASE_PORT" \
    --state-dir "$state" >/dev/null
masters=$(for i in $(seq 0 $((shards - 1))); do echo $((BASE_PORT + i)); done)

flush() { for p in $masters; do redis-cli -p "$p" flushall >/dev/null; done; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else print a[int((NR+1)/2)]}'; }
cpu_per_million() { awk -v n="$N" '{printf "%.3f\n", ($1 + $2) * 1e6 / n}' "$1"; }
run() {
    local out=$1
    shift
    "$TIME" -f "%U %S" -o "$out.cpu" "$@" >"$out" 2>"$out.err" || {
        echo "failed: $*" >&2
        cat "$out.err" >&2
        exit 1
    }
}
ratio() { awk -v r="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2fx", r / b; else print "n/a"}'; }
redlab_ops() { grep -o '"throughput_ops_per_sec": *[0-9.eE+-]*' "$1" | head -1 | sed 's/.*: *//'; }
redlab_threads() { grep -o '"engine_threads": *[0-9]*' "$1" | head -1 | sed 's/.*: *//'; }

echo "A local cluster of $shards masters (no replicas, no persistence), $N SETs per run, -d 3, median of $ROUNDS, alternating; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| placement | config | redlab --threads 1 ops/s | redis-benchmark --cluster ops/s | redlab / redis-benchmark | redlab CPU s per M SETs | redis-benchmark CPU s per M SETs | CPU redlab / redis-benchmark |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for placement in "one CPU" unpinned; do
    pin=()
    [ "$placement" = "one CPU" ] && pin=(taskset -c "$CPU")
    for cfg in $CONFIGS; do
        P=${cfg%%:*}
        C=${cfg##*:}
        for f in r.ops b.ops r.cpum b.cpum r.threads; do : >"$tmp/$f"; done
        for round in $(seq 1 "$ROUNDS"); do
            flush
            run "$tmp/r" "${pin[@]}" "$REDLAB" --cluster --master "redis://127.0.0.1:$BASE_PORT" -q \
                --format json perf -n "$N" -P "$P" -c "$C" -d 3 --rounds 1 --warmup 0 --keep-keys \
                --threads 1
            redlab_ops "$tmp/r" >>"$tmp/r.ops"
            redlab_threads "$tmp/r" | tee -a "$tmp/all.threads" >>"$tmp/r.threads"
            cpu_per_million "$tmp/r.cpu" >>"$tmp/r.cpum"
            flush
            run "$tmp/b" "${pin[@]}" redis-benchmark --cluster -h 127.0.0.1 -p "$BASE_PORT" -t set \
                -n "$N" -P "$P" -c "$C" -d 3 -r "$N" -q
            tr '\r' '\n' <"$tmp/b" | grep -o 'SET: [0-9.]* requests per second' | tail -1 \
                | awk '{print $2}' >>"$tmp/b.ops"
            cpu_per_million "$tmp/b.cpu" >>"$tmp/b.cpum"
            echo "$placement P$P c$C run $round: redlab $(tail -1 "$tmp/r.ops") ($(tail -1 "$tmp/r.threads") engine thread) redis-benchmark $(tail -1 "$tmp/b.ops")" >&2
        done
        r=$(median <"$tmp/r.ops")
        b=$(median <"$tmp/b.ops")
        rc=$(median <"$tmp/r.cpum")
        bc=$(median <"$tmp/b.cpum")
        printf "| %s | P%s c%s | %.0f | %.0f | %s | %s | %s | %s |\n" "$placement" "$P" "$C" "$r" "$b" \
            "$(ratio "$r" "$b")" "$rc" "$bc" "$(ratio "$rc" "$bc")"
    done
done
echo
echo "redlab's engine threads in every run: $(sort -u "$tmp/all.threads" | tr '\n' ' ')(one thread loading all $shards masters)"
