#!/usr/bin/env bash
# One load from three client processes, merged, against the same load from
# one process (issue 24, items 1-2), side by side with redis-benchmark doing
# the same, on a local Redis Cluster of 3 masters (`redlab lab up --cluster`,
# no replicas, no persistence), in one script run:
#
#  - redlab, one process: `perf --cluster -n N -P P -c C --rounds 1`;
#  - redlab, three processes: the same command with `--client K/3` and one
#    `--start-at`, then `redlab report --merge` of the three JSON reports;
#  - redis-benchmark --cluster, one process, `-n N`;
#  - redis-benchmark --cluster, three processes of `-n N/3` at once: the
#    usual way, throughputs added and percentiles averaged (there is no
#    other way to combine them).
#
# Per line: ops/s (median of ROUNDS), p50 and p99 (ms), and the requests the
# figures cover. For the merged redlab run, also the mean of its three
# clients' own p99s: what averaging would have said instead of the merge.
# Every master is flushed before every run. -c is per process (as --client
# keeps it), -n the whole load's.
#
# Environment:
#   REDLAB     the redlab binary (default: `cargo build --profile dist`)
#   BASE_PORT  the lab's first port (default 43300; bus ports are 10000 above)
#   N          SETs per load (default 600000)
#   P, C       pipeline and connections per process (default 16 and 50)
#   ROUNDS     runs of each (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-600000}
P=${P:-16}
C=${C:-50}
ROUNDS=${ROUNDS:-3}
BASE_PORT=${BASE_PORT:-43300}
for tool in redis-server redis-benchmark redis-cli jq; do
    command -v "$tool" >/dev/null || { echo "bench/split.sh needs $tool" >&2; exit 1; }
done
if [ -z "${REDLAB:-}" ]; then
    cargo build --profile dist --locked --quiet >&2
    REDLAB="${CARGO_TARGET_DIR:-target}/dist/redlab"
fi

tmp=$(mktemp -d)
state="$tmp/lab"
trap '"$REDLAB" lab down --state-dir "$state" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
"$REDLAB" -q lab up --cluster --shards 3 --replicas 0 --base-port "$BASE_PORT" \
    --state-dir "$state" >/dev/null
masters="$BASE_PORT $((BASE_PORT + 1)) $((BASE_PORT + 2))"
URL="redis://127.0.0.1:$BASE_PORT"
flush() { for p in $masters; do redis-cli -p "$p" flushall >/dev/null; done; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# redlab's cluster report: ops/s, p50 ms, p99 ms, requests in the histogram.
redlab_figures() {
    jq -r '.details.total | [.throughput_ops_per_sec, .latency.p50_us / 1000,
        .latency.p99_us / 1000, .latency.count] | @tsv' "$1"
}
# redis-benchmark --csv: "SET","rps","avg","min","p50","p95","p99","max".
rb_figures() { tr -d '"\r' <"$1" | awk -F, '$1 == "SET" {print $2 "\t" $5 "\t" $7}'; }
perf=(--cluster --master "$URL" -q --format json perf -n "$N" -P "$P" -c "$C" -d 3 --rounds 1
    --warmup 0 --keep-keys)

: >"$tmp/one"; : >"$tmp/three"; : >"$tmp/rb1"; : >"$tmp/rb3"; : >"$tmp/avg"
for round in $(seq 1 "$ROUNDS"); do
    flush
    "$REDLAB" "${perf[@]}" >"$tmp/one.json" || true  # exit 1 is a failed check: the figures still count
    redlab_figures "$tmp/one.json" >>"$tmp/one"

    flush
    at=$(($(date +%s) + 2))
    for k in 1 2 3; do
        ("$REDLAB" "${perf[@]}" --client "$k/3" --start-at "$at" >"$tmp/c$k.json" || true) &
    done
    wait
    "$REDLAB" -q --format json report --merge "$tmp/c1.json" "$tmp/c2.json" "$tmp/c3.json" \
        >"$tmp/merged.json" || true
    redlab_figures "$tmp/merged.json" >>"$tmp/three"
    for k in 1 2 3; do jq -r '.details.total.latency.p99_us / 1000' "$tmp/c$k.json"; done \
        | awk '{s += $1} END {printf "%.3f\n", s / NR}' >>"$tmp/avg"

    flush
    redis-benchmark --cluster -h 127.0.0.1 -p "$BASE_PORT" -t set -n "$N" -P "$P" -c "$C" -d 3 \
        -r "$N" --csv >"$tmp/rb1.csv" 2>/dev/null
    rb_figures "$tmp/rb1.csv" >>"$tmp/rb1"

    flush
    for k in 1 2 3; do
        redis-benchmark --cluster -h 127.0.0.1 -p "$BASE_PORT" -t set -n $((N / 3)) -P "$P" \
            -c "$C" -d 3 -r "$N" --csv >"$tmp/rb3.$k.csv" 2>/dev/null &
    done
    wait
    for k in 1 2 3; do rb_figures "$tmp/rb3.$k.csv"; done \
        | awk '{ops += $1; p50 += $2; p99 += $3} END {printf "%s\t%.3f\t%.3f\n", ops, p50 / 3, p99 / 3}' \
        >>"$tmp/rb3"
    echo "round $round: redlab one $(cut -f1 <(tail -1 "$tmp/one")) three $(cut -f1 <(tail -1 "$tmp/three")); redis-benchmark one $(cut -f1 <(tail -1 "$tmp/rb1")) three $(cut -f1 <(tail -1 "$tmp/rb3"))" >&2
done

col() { cut -f"$2" "$1" | median; }
echo "A local cluster of 3 masters (no replicas, no persistence); one load of $N SETs, -P $P, -c $C per process, -d 3; median of $ROUNDS; load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo
echo "| client | processes | ops/s | p50 ms | p99 ms | requests in the figures | how the processes' figures are combined |"
echo "|---|---:|---:|---:|---:|---:|---|"
printf "| redlab | 1 | %.0f | %.3f | %.3f | %s | |\n" "$(col "$tmp/one" 1)" "$(col "$tmp/one" 2)" "$(col "$tmp/one" 3)" "$(col "$tmp/one" 4)"
printf "| redlab | 3 (\`--client K/3\`) | %.0f | %.3f | %.3f | %s | \`report --merge\`: histograms added (the mean of the three p99s would be %s) |\n" \
    "$(col "$tmp/three" 1)" "$(col "$tmp/three" 2)" "$(col "$tmp/three" 3)" "$(col "$tmp/three" 4)" "$(median <"$tmp/avg")"
printf "| redis-benchmark | 1 | %.0f | %.3f | %.3f | %s | |\n" "$(col "$tmp/rb1" 1)" "$(col "$tmp/rb1" 2)" "$(col "$tmp/rb1" 3)" "$N"
printf "| redis-benchmark | 3 (\`-n %s\` each) | %.0f | %.3f | %.3f | %s | ops/s added, p50 and p99 averaged |\n" \
    "$((N / 3))" "$(col "$tmp/rb3" 1)" "$(col "$tmp/rb3" 2)" "$(col "$tmp/rb3" 3)" "$((N / 3 * 3))"
