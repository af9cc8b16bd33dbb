#!/usr/bin/env bash
# Compare redlab's perf engine with redis-benchmark, SET with 3-byte values.
#
# Starts its own redis-server on a free 127.0.0.1 port (no persistence), and
# for each config runs redlab and redis-benchmark alternately, ROUNDS times
# each, with server and both clients pinned to the same CPU (taskset -c CPU).
# The server is flushed before every run so memory does not grow. Prints a
# markdown table of medians: ops/s; client CPU seconds per million SETs (both
# tools measured the same way: /usr/bin/time user+sys of the client); and
# requests per CPU-second of server+client (server CPU from /proc), which is
# what the pinned CPU would deliver if nothing else ran on it, so it stays
# meaningful when other load on the machine makes wall-clock ops/s noisy.
# For one-connection configs it also runs examples/syscall_floor.rs (one batch
# encoded once and sent again and again: only the system calls) and prints its
# client CPU: the least any client can spend per million SETs on this machine.
#
# Environment:
#   REDLAB       the redlab binary (default: built here with the dist profile,
#                release plus whole-program LTO, ~5 min the first time), called as
#                $REDLAB --master redis://127.0.0.1:PORT -q --format json \
#                    perf -n N -P P -c C -d 3 --rounds 1 --warmup 0 --keep-keys
#                (--keep-keys: the script flushes its own server between runs,
#                so redlab's key removal is not timed into its CPU figures).
#   N            requests per run (default 1000000)
#   ROUNDS       runs per tool per config (default 3; median reported)
#   CONFIGS      space-separated P:C pairs (default "1000:1 64:1 16:50 1:50")
#   CPU          CPU to pin to (default 0)
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-1000000}
ROUNDS=${ROUNDS:-3}
CONFIGS=${CONFIGS:-"1000:1 64:1 16:50 1:50"}
CPU=${CPU:-0}

if [ -z "${REDLAB:-}" ]; then
    cargo build --profile dist --quiet >&2
    REDLAB="${CARGO_TARGET_DIR:-target}/dist/redlab"
fi
cargo build --release --quiet --example syscall_floor >&2
FLOOR="${CARGO_TARGET_DIR:-target}/release/examples/syscall_floor"
TIME=/usr/bin/time
[ -x "$TIME" ] || TIME=""

# A free port: one nothing answers on (bash /dev/tcp connect fails).
port=""
for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
done
[ -n "$port" ] || { echo "no free port found" >&2; exit 1; }

taskset -c "$CPU" redis-server --bind 127.0.0.1 --port "$port" --save "" \
    --appendonly no --loglevel warning >/dev/null 2>&1 &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.1
done
redis-cli -p "$port" ping >/dev/null || { echo "redis-server did not start" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT

# Server CPU (user+sys) in clock ticks, from /proc.
server_ticks() { awk '{print $14 + $15}' "/proc/$server_pid/stat"; }

# run OUTFILE CMD...: run pinned, stdout to OUTFILE, client "user sys" seconds
# to OUTFILE.cpu, server CPU seconds used during the run to OUTFILE.srv.
run() {
    local out=$1; shift
    redis-cli -p "$port" flushall >/dev/null
    local before; before=$(server_ticks)
    if [ -n "$TIME" ]; then
        "$TIME" -f "%U %S" -o "$out.cpu" taskset -c "$CPU" "$@" >"$out" 2>"$out.err"
    else
        taskset -c "$CPU" "$@" >"$out" 2>"$out.err"
        echo "nan nan" >"$out.cpu"
    fi
    echo "$(( $(server_ticks) - before ))" | awk -v hz="$(getconf CLK_TCK)" '{print $1 / hz}' >"$out.srv"
}

median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else print a[int((NR+1)/2)]}'; }
cpu_per_million() { awk -v n="$N" '{printf "%.3f\n", ($1 + $2) * 1e6 / n}' "$1"; }
# Requests per CPU-second of server + client: what the pinned CPU would
# deliver with nothing else running (robust against other load on the box).
per_cpu_second() {
    awk -v n="$N" -v srv="$(cat "$1.srv")" '{t = $1 + $2 + srv; if (t > 0) printf "%.0f\n", n / t; else print "nan"}' "$1.cpu"
}

echo "| config | redlab ops/s | redis-benchmark ops/s | ratio | redlab CPU s/M | redis-benchmark CPU s/M | floor CPU s/M | redlab ops/CPU-s | redis-benchmark ops/CPU-s | ratio (CPU) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for cfg in $CONFIGS; do
    P=${cfg%%:*}
    C=${cfg##*:}
    for f in r.ops b.ops r.cpum b.cpum r.pcs b.pcs f.cpum; do : >"$tmp/$f"; done
    for round in $(seq 1 "$ROUNDS"); do
        run "$tmp/r" "$REDLAB" --master "redis://127.0.0.1:$port" -q --format json \
            perf -n "$N" -P "$P" -c "$C" -d 3 --rounds 1 --warmup 0 --keep-keys
        grep -o '"throughput_ops_per_sec": *[0-9.eE+-]*' "$tmp/r" | head -1 | sed 's/.*: *//' >>"$tmp/r.ops"
        cpu_per_million "$tmp/r.cpu" >>"$tmp/r.cpum"
        per_cpu_second "$tmp/r" >>"$tmp/r.pcs"
        run "$tmp/b" redis-benchmark -h 127.0.0.1 -p "$port" -t set -n "$N" -P "$P" -c "$C" \
            -d 3 -r "$N" -q
        tr '\r' '\n' <"$tmp/b" | grep -o 'SET: [0-9.]* requests per second' | tail -1 \
            | awk '{print $2}' >>"$tmp/b.ops"
        cpu_per_million "$tmp/b.cpu" >>"$tmp/b.cpum"
        per_cpu_second "$tmp/b" >>"$tmp/b.pcs"
        if [ "$C" = 1 ]; then
            run "$tmp/f" "$FLOOR" "$port" "$N" "$P"
            cpu_per_million "$tmp/f.cpu" >>"$tmp/f.cpum"
        fi
        echo "P$P c$C round $round: redlab $(tail -1 "$tmp/r.ops") redis-benchmark $(tail -1 "$tmp/b.ops")" >&2
    done
    r=$(median <"$tmp/r.ops"); b=$(median <"$tmp/b.ops")
    rc=$(median <"$tmp/r.cpum"); bc=$(median <"$tmp/b.cpum")
    rp=$(median <"$tmp/r.pcs"); bp=$(median <"$tmp/b.pcs")
    fc=$(median <"$tmp/f.cpum"); [ "$fc" = nan ] && fc="n/a"
    ratio() { awk -v r="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2fx", r / b; else print "n/a"}'; }
    printf "| P%s c%s | %.0f | %.0f | %s | %s | %s | %s | %s | %s | %s |\n" "$P" "$C" "$r" "$b" \
        "$(ratio "$r" "$b")" "$rc" "$bc" "$fc" "$rp" "$bp" "$(ratio "$rp" "$bp")"
done

# The workshop's case as a whole process: 1000 SETs pipelined 1000 deep
# against a lone master, start to exit (median of 21 runs each, pinned).
wall_ms() {
    local t0 t1
    t0=$(date +%s%N)
    taskset -c "$CPU" "$@" >/dev/null 2>&1
    t1=$(date +%s%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f\n", (b - a) / 1e6}'
}
: >"$tmp/rw"; : >"$tmp/bw"
for _ in $(seq 1 21); do
    redis-cli -p "$port" flushall >/dev/null
    wall_ms "$REDLAB" --master "redis://127.0.0.1:$port" -q --format json \
        perf -n 1000 -P 1000 --rounds 1 --warmup 0 >>"$tmp/rw"
    wall_ms redis-benchmark -h 127.0.0.1 -p "$port" -t set -n 1000 -P 1000 -c 1 -d 3 -q >>"$tmp/bw"
done
echo
echo "| whole process, -n 1000 -P 1000, lone master | redlab | redis-benchmark |"
echo "|---|---:|---:|"
echo "| median wall time of 21 runs (ms) | $(median <"$tmp/rw") | $(median <"$tmp/bw") |"
