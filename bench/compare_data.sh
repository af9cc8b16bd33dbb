#!/usr/bin/env bash
# redlab compare on a million keys: a master and 3 replicas on free 127.0.0.1
# ports (no persistence, no maxmemory, DEBUG allowed from loopback), filled
# with KEYS keys of mixed types (60 % strings of 100 B, 10 % each hashes of 10
# fields, sets, zsets and lists of 10 members; 10 % of all keys with a TTL of
# an hour or more). Then, each printed as a markdown row:
#
#   - the digest fast path (DEBUG DIGEST on every node, TTLs on a sample), and
#     how long one DEBUG DIGEST blocks the master;
#   - the full four-way key-level compare (--no-digest) at --max-ops MAX_OPS
#     values (default: redlab's default, then no cap): wall time, redlab's
#     peak RSS (/usr/bin/time -v), keys/s per replica, commands sent;
#   - the same between the master and one replica (what RedisFullCheck
#     compares: one source, one target);
#   - the master's GET latency under `redis-benchmark -P 1 -c 10 -t get`,
#     idle and while each key-level compare runs (the benchmark starts 2 s
#     into the compare and must end before it; a row says so if not).
#
# Environment:
#   REDLAB    the redlab binary (default: built here with --release)
#   KEYS      keys to fill (default 1000000)
#   MAX_OPS   space-separated --max-ops values for the key-level runs
#             (default "100000 0"; 0 is no cap); each is run twice: once
#             timed alone, once with redis-benchmark during it
#   GETS      requests per redis-benchmark run (default 100000)
#   PIN       1: the master and redis-benchmark on CPU 0, the replicas and
#             redlab on CPU 1 (taskset), as when the replicas live on other
#             hosts: the master's latency then shows compare's load on the
#             master, not the replicas' competition for its core
set -euo pipefail
cd "$(dirname "$0")/.."

KEYS=${KEYS:-1000000}
MAX_OPS=${MAX_OPS:-"100000 0"}
GETS=${GETS:-100000}
PIN=${PIN:-0}
pin0=(); pin1=()
if [ "$PIN" = 1 ]; then pin0=(taskset -c 0); pin1=(taskset -c 1); fi
if [ -z "${REDLAB:-}" ]; then
    cargo build --release --quiet >&2
    REDLAB="${CARGO_TARGET_DIR:-target}/release/redlab"
fi
for tool in redis-server redis-cli redis-benchmark python3 /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }
done

dir=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

free_port() {
    local p
    for _ in $(seq 1 100); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
    done
    echo "no free port" >&2; exit 1
}

start() { # cpu port [args...]
    local cpu=$1 port=$2; shift 2
    local pin=("${pin0[@]}")
    [ "$cpu" = 1 ] && pin=("${pin1[@]}")
    "${pin[@]}" redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
        --maxmemory 0 --enable-debug-command local --repl-diskless-sync-delay 0 \
        --client-output-buffer-limit "replica 0 0 0" \
        --dir "$dir" --dbfilename "dump-$port.rdb" --loglevel warning "$@" \
        >"$dir/$port.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 100); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "redis-server on $port did not start" >&2; exit 1
}

M=$(free_port); start 0 "$M"
echo "filling $KEYS keys on the master (127.0.0.1:$M)" >&2
python3 - "$KEYS" <<'PY' | redis-cli -p "$M" --pipe >/dev/null
import sys
n = int(sys.argv[1])
out = sys.stdout.buffer
def cmd(*args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    out.write(b"".join(parts))
value = b"v" * 100
members = [b"m%d" % j for j in range(10)]
for i in range(n):
    k = b"k:%d" % i
    kind = i % 10
    if kind < 6:
        cmd(b"SET", k, value)
    elif kind == 6:
        cmd(b"HSET", k, *[x for j in range(10) for x in (b"f%d" % j, b"value-%d" % j)])
    elif kind == 7:
        cmd(b"SADD", k, *members)
    elif kind == 8:
        cmd(b"ZADD", k, *[x for j in range(10) for x in (str(j * 1.5).encode(), members[j])])
    else:
        cmd(b"RPUSH", k, *members)
    if (i // 10) % 10 == 0:
        cmd(b"EXPIRE", k, 3600 + i % 1000)
PY
R=()
for _ in 1 2 3; do
    p=$(free_port); start 1 "$p" --replicaof 127.0.0.1 "$M"; R+=("$p")
done
echo "waiting for the 3 replicas' full syncs" >&2
for _ in $(seq 1 600); do
    info=$(redis-cli -p "$M" info replication)
    off=$(echo "$info" | tr -d '\r' | awk -F: '/^master_repl_offset/{print $2}')
    online=$(echo "$info" | grep -c "state=online,offset=$off," || true)
    [ "$online" = 3 ] && break
    sleep 0.5
done
[ "$online" = 3 ] || { echo "replicas did not sync" >&2; exit 1; }
dbsize=$(redis-cli -p "$M" dbsize)
mem=$(redis-cli -p "$M" info memory | tr -d '\r' | awk -F: '/^used_memory_human/{print $2}')
echo "in sync: $dbsize keys, $mem on each node" >&2

TOPO=(--master "redis://127.0.0.1:$M")
for p in "${R[@]}"; do TOPO+=(--replica "redis://127.0.0.1:$p"); done

# `redis-benchmark --csv` GET line -> "p50 p99 avg rps" (ms, ms, ms, requests/s).
bench_get() {
    "${pin0[@]}" redis-benchmark -p "$M" -P 1 -c 10 -t get -n "$GETS" --csv 2>/dev/null |
        awk -F, '/^"GET/{gsub(/"/,""); print $5, $7, $3, int($2)}'
}

# run NAME COMPARE-ARGS...: `redlab $TOPO compare ...` under /usr/bin/time;
# prints "wall_s rss_mib" and keeps the JSON report.
run() {
    local name=$1; shift
    /usr/bin/time -v -o "$dir/$name.time" "${pin1[@]}" "$REDLAB" "${TOPO[@]}" -q --format json compare "$@" \
        >"$dir/$name.json" 2>"$dir/$name.err" || true
    local wall rss
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/{print $2}' "$dir/$name.time" |
        awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
    rss=$(awk -F': ' '/Maximum resident set size/{printf "%.1f", $2/1024}' "$dir/$name.time")
    echo "$wall $rss"
}

field() { # file python-expression on r (the report)
    python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print($2)" "$1"
}

verdicts() {
    field "$1" "' '.join(c['verdict'] for c in r['checks'])"
}

ops() { field "$1" "r['details']['master_ops'] + sum(x['ops'] for x in r['details']['replicas'])"; }
rate() { field "$1" "round(r['details']['keys_per_sec_per_node'])"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f", a/b}'; }

# Every node answers PING again (a DEBUG DIGEST blocks a server for seconds).
wait_idle() {
    for p in "$M" "${R[@]}"; do
        for _ in $(seq 1 600); do
            timeout 0.5 redis-cli -p "$p" ping >/dev/null 2>&1 && break
            sleep 0.1
        done
    done
}

load() { cut -d' ' -f1-3 /proc/loadavg; }
echo
echo "load average (1, 5, 15 min) at the start: $(load); other jobs on the machine count in every figure"
echo
echo "| run | wall s | redlab peak RSS MiB | keys/s per replica | commands | verdicts | GET p50 / p99 / avg ms, GET/s |"
echo "|---|---|---|---|---|---|---|"
read -r p50 p99 avg rps < <(bench_get)
echo "| idle master (no compare) | | | | | | $p50 / $p99 / $avg, $rps |"

t0=$(date +%s%N)
redis-cli -p "$M" debug digest >/dev/null
t1=$(date +%s%N)
echo "| one DEBUG DIGEST on the master (it blocks the server) | $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", (b-a)/1e9}') | | | | | |"

wait_idle
read -r wall rss < <(run digest --digest-max-keys 100000000)
echo "| digest path (--digest-max-keys raised), master + 3 replicas | $wall | $rss | $(rate "$dir/digest.json") | $(ops "$dir/digest.json") | $(verdicts "$dir/digest.json") | |"

for cap in $MAX_OPS; do
    label="key level, master + 3 replicas, --max-ops $cap"
    [ "$cap" = 0 ] && label="key level, master + 3 replicas, no cap (--max-ops 0)"
    wait_idle
    read -r wall rss < <(run "keys$cap" --no-digest --max-ops "$cap")
    f="$dir/keys$cap.json"
    echo "| $label | $wall | $rss | $(rate "$f") | $(ops "$f") | $(verdicts "$f") | |"
    # Latency: idle, then with the same compare running (from 2 s in).
    read -r i50 i99 iavg irps < <(bench_get)
    "${pin1[@]}" "$REDLAB" "${TOPO[@]}" -q --format json compare --no-digest --max-ops "$cap" \
        >/dev/null 2>"$dir/bg.err" &
    bg=$!
    sleep 2
    read -r p50 p99 avg rps < <(bench_get)
    note=""
    kill -0 "$bg" 2>/dev/null || note=" (the compare ended before the benchmark did: $(head -c 200 "$dir/bg.err"))"
    wait "$bg" || true
    echo "| GET latency, idle just before | | | | | | $i50 / $i99 / $iavg, $irps |"
    echo "| GET latency during it | | | | | | $p50 / $p99 / $avg, $rps: p50 $(ratio "$p50" "$i50")x, p99 $(ratio "$p99" "$i99")x, avg $(ratio "$avg" "$iavg")x idle$note |"
done

TOPO=(--master "redis://127.0.0.1:$M" --replica "redis://127.0.0.1:${R[0]}")
wait_idle
read -r wall rss < <(run pair --no-digest)
echo "| key level, master + 1 replica (one source, one target) | $wall | $rss | $(rate "$dir/pair.json") | $(ops "$dir/pair.json") | $(verdicts "$dir/pair.json") | |"
echo
echo "load average at the end: $(load)"
