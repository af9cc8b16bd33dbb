#!/usr/bin/env bash
# redlab perf against redis-benchmark --cluster on a local Redis Cluster
# (`redlab lab up --cluster`: 3 masters, no persistence), SET with 3-byte
# values; then perf --threads 2 against --threads 1 on a lone master.
#
# Part 1: for each P:C config the two tools run alternately, ROUNDS times
# each, every master flushed before every run. Nothing is pinned: three
# servers and the client share the machine's CPUs. Prints medians: ops/s as
# each tool reports it (redlab: the cluster total of its one round), and
# client CPU seconds per million SETs (/usr/bin/time user+sys of the client,
# the same for both tools). -n and -c are totals for both: redlab shares
# them out among the shard masters, redis-benchmark spreads its clients
# over them. redlab runs with --threads 1 (its default): one engine thread
# driving every master's connections, like redis-benchmark's default single
# thread (before issue 24 it was one thread per shard master; see
# bench/cluster_fair.sh for the pinned like-for-like run).
# memtier_benchmark (--cluster-mode) is not installed here: its column is
# left out (MEMTIER=path/to/memtier_benchmark adds it).
#
# Part 2: a lone redis-server on CPU 0 and the client on CPU 1 (taskset):
# `perf --threads 1` and `--threads 2`, the same -n, alternately, ROUNDS
# each; prints ops/s, client CPU, and the request count in the merged
# latency histogram of --threads 2 (it must be N). The client has one CPU:
# two threads cannot go faster than one; the point is that the merged
# results are right and one thread did not get slower.
#
# Environment:
#   REDLAB       the redlab binary (default: built here, --release)
#   MEMTIER      a memtier_benchmark binary (default: from PATH)
#   N            SETs per run (default 1000000)
#   ROUNDS       runs per tool per config (default 3; median reported)
#   CONFIGS      space-separated P:C pairs (default "16:50 1:50")
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-1000000}
ROUNDS=${ROUNDS:-3}
CONFIGS=${CONFIGS:-"16:50 1:50"}

if [ -z "${REDLAB:-}" ]; then
    cargo build --release --quiet >&2
    REDLAB="${CARGO_TARGET_DIR:-target}/release/redlab"
fi
MEMTIER=${MEMTIER:-$(command -v memtier_benchmark || true)}
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
for tool in redis-server redis-benchmark redis-cli taskset; do
    command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }
done

tmp=$(mktemp -d)
state="$tmp/lab"
server_pid=""
cleanup() {
    "$REDLAB" lab down --state-dir "$state" >/dev/null 2>&1 || true
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# A run of n ports, and 10000 above (the cluster bus), that nothing answers
# on; below the kernel's ephemeral range (32768 up), so that no outgoing
# connection holds one.
free_run() {
    local n=$1
    for _ in $(seq 1 50); do
        local b=$((20000 + RANDOM % 2700)) ok=1
        for i in $(seq 0 $((n - 1))); do
            for p in $((b + i)) $((b + i + 10000)); do
                if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then ok=0; fi
            done
        done
        [ "$ok" = 1 ] && { echo "$b"; return; }
    done
    echo "no free ports found" >&2
    exit 1
}

shards=3
base=$(free_run "$shards")
"$REDLAB" -q lab up --cluster --shards "$shards" --replicas 0 --base-port "$base" \
    --state-dir "$state" >/dev/null
masters=$(for i in $(seq 0 $((shards - 1))); do echo $((base + i)); done)

flush() { for p in $masters; do redis-cli -p "$p" flushall >/dev/null; done; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else print a[int((NR+1)/2)]}'; }
cpu_per_million() { awk -v n="$N" '{printf "%.3f\n", ($1 + $2) * 1e6 / n}' "$1"; }
# run OUTFILE CMD...: stdout to OUTFILE, the client's "user sys" seconds to OUTFILE.cpu.
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
# The first throughput in a redlab JSON report: on a cluster the total's
# (details.total comes before the shards), on one master the run's.
redlab_ops() { grep -o '"throughput_ops_per_sec": *[0-9.eE+-]*' "$1" | head -1 | sed 's/.*: *//'; }

echo "Part 1: a local cluster of $shards masters (no replicas, no persistence), $N SETs per run, -d 3, median of $ROUNDS, alternating"
echo
if [ -n "$MEMTIER" ]; then
    echo "| config | redlab ops/s | redis-benchmark --cluster ops/s | memtier --cluster-mode ops/s | redlab / redis-benchmark | redlab / memtier | redlab CPU s per M SETs | redis-benchmark CPU s per M | memtier CPU s per M |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
else
    echo "| config | redlab ops/s | redis-benchmark --cluster ops/s | redlab / redis-benchmark | redlab CPU s per M SETs | redis-benchmark CPU s per M SETs |"
    echo "|---|---:|---:|---:|---:|---:|"
fi
for cfg in $CONFIGS; do
    P=${cfg%%:*}
    C=${cfg##*:}
    for f in r.ops b.ops m.ops r.cpum b.cpum m.cpum; do : >"$tmp/$f"; done
    for round in $(seq 1 "$ROUNDS"); do
        flush
        run "$tmp/r" "$REDLAB" --cluster --master "redis://127.0.0.1:$base" -q --format json \
            perf -n "$N" -P "$P" -c "$C" -d 3 --rounds 1 --warmup 0 --keep-keys
        redlab_ops "$tmp/r" >>"$tmp/r.ops"
        cpu_per_million "$tmp/r.cpu" >>"$tmp/r.cpum"
        flush
        run "$tmp/b" redis-benchmark --cluster -h 127.0.0.1 -p "$base" -t set -n "$N" \
            -P "$P" -c "$C" -d 3 -r "$N" -q
        tr '\r' '\n' <"$tmp/b" | grep -o 'SET: [0-9.]* requests per second' | tail -1 \
            | awk '{print $2}' >>"$tmp/b.ops"
        cpu_per_million "$tmp/b.cpu" >>"$tmp/b.cpum"
        if [ -n "$MEMTIER" ]; then
            flush
            # memtier's -c is clients per thread, each connected to every master.
            clients=$(((C + shards - 1) / shards))
            run "$tmp/m" "$MEMTIER" --cluster-mode -s 127.0.0.1 -p "$base" --protocol=redis \
                -t 1 -c "$clients" --pipeline "$P" -n $((N / clients)) --ratio 1:0 -d 3 \
                --key-pattern P:P --key-maximum "$N" --hide-histogram
            grep -E '^(Sets|Totals)' "$tmp/m" | tail -1 | awk '{print $2}' >>"$tmp/m.ops"
            cpu_per_million "$tmp/m.cpu" >>"$tmp/m.cpum"
        fi
        echo "P$P c$C run $round: redlab $(tail -1 "$tmp/r.ops") redis-benchmark $(tail -1 "$tmp/b.ops")" >&2
    done
    r=$(median <"$tmp/r.ops")
    b=$(median <"$tmp/b.ops")
    rc=$(median <"$tmp/r.cpum")
    bc=$(median <"$tmp/b.cpum")
    if [ -n "$MEMTIER" ]; then
        m=$(median <"$tmp/m.ops")
        mc=$(median <"$tmp/m.cpum")
        printf "| P%s c%s | %.0f | %.0f | %.0f | %s | %s | %s | %s | %s |\n" "$P" "$C" "$r" "$b" "$m" \
            "$(ratio "$r" "$b")" "$(ratio "$r" "$m")" "$rc" "$bc" "$mc"
    else
        printf "| P%s c%s | %.0f | %.0f | %s | %s | %s |\n" "$P" "$C" "$r" "$b" \
            "$(ratio "$r" "$b")" "$rc" "$bc"
    fi
done
[ -n "$MEMTIER" ] || echo "
memtier_benchmark is not installed here: its column is left out (MEMTIER=path/to/memtier_benchmark adds it)."
"$REDLAB" lab down --state-dir "$state" >/dev/null

# Part 2: threads on a lone master, server on CPU 0, client on CPU 1.
port=$(free_run 1)
taskset -c 0 redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
    --loglevel warning >/dev/null 2>&1 &
server_pid=$!
until redis-cli -p "$port" ping >/dev/null 2>&1; do
    kill -0 "$server_pid" || { echo "redis-server did not start" >&2; exit 1; }
    sleep 0.05
done
echo
echo "Part 2: a lone master on CPU 0, the client on CPU 1, $N SETs per run, median of $ROUNDS, alternating"
echo
echo "| config | --threads 1 ops/s | --threads 2 ops/s | 2 / 1 | --threads 1 CPU s per M | --threads 2 CPU s per M | requests in --threads 2's merged histogram |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for cfg in $CONFIGS; do
    P=${cfg%%:*}
    C=${cfg##*:}
    for f in 1.ops 2.ops 1.cpum 2.cpum 2.count; do : >"$tmp/$f"; done
    for round in $(seq 1 "$ROUNDS"); do
        for t in 1 2; do
            redis-cli -p "$port" flushall >/dev/null
            run "$tmp/t$t" taskset -c 1 "$REDLAB" --master "redis://127.0.0.1:$port" -q --format json \
                perf -n "$N" -P "$P" -c "$C" -d 3 --rounds 1 --warmup 0 --keep-keys --threads "$t"
            redlab_ops "$tmp/t$t" >>"$tmp/$t.ops"
            cpu_per_million "$tmp/t$t.cpu" >>"$tmp/$t.cpum"
        done
        # "latency": {"count": N, ...}: every request in the merged histogram.
        tr -d ' \n' <"$tmp/t2" | grep -o '"latency":{"count":[0-9]*' | head -1 | sed 's/.*://' >>"$tmp/2.count"
        echo "P$P c$C run $round: threads 1 $(tail -1 "$tmp/1.ops") threads 2 $(tail -1 "$tmp/2.ops")" >&2
    done
    one=$(median <"$tmp/1.ops")
    two=$(median <"$tmp/2.ops")
    printf "| P%s c%s | %.0f | %.0f | %s | %s | %s | %s |\n" "$P" "$C" "$one" "$two" "$(ratio "$two" "$one")" \
        "$(median <"$tmp/1.cpum")" "$(median <"$tmp/2.cpum")" "$(sort -u "$tmp/2.count" | tr '\n' ' ')"
done
