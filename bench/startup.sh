#!/usr/bin/env bash
# The fixed cost of a redlab process against redis-benchmark's, in ONE run
# (ratios from the same run are what to compare on a shared machine):
#
#  1. `redlab --version` against /bin/true (hyperfine -N: no shell).
#  2. The headline: the whole process, 1000 SETs in one -P 1000 batch
#     against a lone master, start to exit, for each placement: the client
#     pinned to the server's CPU ("one") and to the other CPU ("separate").
#  3. `-n 1`: one SET, start to exit, same placements.
#  4. Peak RSS (/usr/bin/time %M) at -c 1 (-P 16, 100k SETs) and at each
#     RSS_CONNS (-P 1, 100k SETs), client on CLIENT_CPU.
#  5. `redlab --timings` of one headline run: where its time goes.
#
# Starts its own redis-server (127.0.0.1, no persistence, pinned to
# SERVER_CPU) on PORT (default: a free one in 44000-44999), flushed before
# every timed run, and stops it.
#
#   bash bench/startup.sh                 # builds the dist profile (~5 min)
#   REDLAB=target/release/redlab bash bench/startup.sh
#
# Environment:
#   REDLAB       the redlab binary (default: `cargo build --profile dist`)
#   RUNS         hyperfine runs per command (default 30; 50 for --version)
#   ROUNDS       RSS runs per tool and size (default 3; median reported)
#   RSS_CONNS    connection counts besides 1 (default "1000 5000")
#   SERVER_CPU   CPU for the server (default 0); CLIENT_CPU another (default 1)
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-30}
ROUNDS=${ROUNDS:-3}
RSS_CONNS=${RSS_CONNS:-"1000 5000"}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}

for tool in redis-server redis-benchmark redis-cli taskset jq hyperfine; do
    command -v "$tool" >/dev/null || { echo "bench/startup.sh needs $tool" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "bench/startup.sh needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
if [ -z "${REDLAB:-}" ]; then
    cargo build --profile dist --locked --quiet >&2
    REDLAB="${CARGO_TARGET_DIR:-target}/dist/redlab"
fi
ulimit -n 20000 2>/dev/null || true

port=${PORT:-}
if [ -z "$port" ]; then
    # One that binds (a connect test misses ports held by outgoing
    # connections: this range is inside the kernel's ephemeral one).
    port=$(python3 -c 'import random, socket
for p in random.sample(range(44000, 45000), 200):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass
    finally:
        s.close()')
fi
[ -n "$port" ] || { echo "no free port found" >&2; exit 1; }
tmp=$(mktemp -d)
taskset -c "$SERVER_CPU" redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
    --loglevel warning --maxclients 10100 --dir "$tmp" >"$tmp/server.log" 2>&1 &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 1 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$port" ping >/dev/null || { echo "redis-server did not start:" >&2; tail -5 "$tmp/server.log" >&2; exit 1; }
URL="redis://127.0.0.1:$port"

ratio() { awk -v r="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2fx", r / b; else print "n/a"}'; }
cpu_of() { case $1 in one) echo "$SERVER_CPU" ;; *) echo "$CLIENT_CPU" ;; esac; }
# The median of the numbers on stdin, one a line (of the middle two when even).
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
# hf CPU RUNS CMD...: hyperfine pinned to CPU (the timed processes inherit
# it, no taskset or shell inside the measurement); medians in ms, one a line.
# The commands take turns in blocks of 5 runs (RUNS/5 turns each), not one
# block of RUNS each: on a shared VM the speed of the whole machine drifts
# over seconds, and one block per command put that drift between the
# commands compared (0.74x in one run, 0.89x in the next, same binaries).
hf() {
    local cpu=$1 runs=$2; shift 2
    local i turn
    for i in $(seq 1 $#); do : >"$tmp/hf.$i"; done
    for turn in $(seq 1 $(( (runs + 4) / 5 ))); do
        i=0
        for cmd in "$@"; do
            i=$((i + 1))
            taskset -c "$cpu" hyperfine -N --style none --warmup 1 --runs 5 \
                --prepare "redis-cli -p $port flushall" --export-json "$tmp/hf.json" "$cmd" >/dev/null 2>&1
            jq -r '.results[0].times[] * 1000' "$tmp/hf.json" >>"$tmp/hf.$i"
        done
    done
    for i in $(seq 1 $#); do median <"$tmp/hf.$i"; done
}

echo "redlab: $REDLAB ($(stat -c %s "$REDLAB") bytes); $(redis-server --version | cut -d' ' -f1-3)"
echo "host: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) at the start"
echo

echo "1. redlab --version against /bin/true (hyperfine -N, 50 runs in turns of 5, CPU $CLIENT_CPU; median ms)"
echo
mapfile -t v < <(hf "$CLIENT_CPU" 50 "$REDLAB --version" "/bin/true")
echo "| redlab --version | /bin/true | difference |"
echo "|---:|---:|---:|"
awk -v a="${v[0]}" -v b="${v[1]}" 'BEGIN {printf "| %.2f | %.2f | %+.2f ms |\n", a, b, a - b}'

whole() { # title, redlab args, redis-benchmark args
    local title=$1 rl=$2 rb=$3
    echo
    echo "$title (hyperfine -N, $RUNS runs each in turns of 5; median ms; server on CPU $SERVER_CPU)"
    echo
    echo "| placement | redlab | redis-benchmark | ratio |"
    echo "|---|---:|---:|---:|"
    for placement in one separate; do
        local cpu
        cpu=$(cpu_of "$placement")
        mapfile -t m < <(hf "$cpu" "$RUNS" "$REDLAB --master $URL -q --format json perf $rl" \
            "redis-benchmark -h 127.0.0.1 -p $port $rb")
        printf "| %s (client on CPU %s) | %.2f | %.2f | %s |\n" "$placement" "$cpu" "${m[0]}" "${m[1]}" \
            "$(ratio "${m[0]}" "${m[1]}")"
    done
}
whole "2. The headline: 1000 SETs in one -P 1000 batch, whole process" \
    "-n 1000 -P 1000 --rounds 1 --warmup 0" "-t set -n 1000 -P 1000 -c 1 -d 3 -q"
whole "3. One SET, whole process" \
    "-n 1 -P 1 --rounds 1 --warmup 0" "-t set -n 1 -P 1 -c 1 -d 3 -q"

echo
echo "4. Peak RSS (MiB, /usr/bin/time %M), 100k SETs (-P 16 at -c 1, else -P 1), client on CPU $CLIENT_CPU, median of $ROUNDS"
echo
echo "| connections | redlab | redis-benchmark | redlab - rb | ratio |"
echo "|---:|---:|---:|---:|---:|"
rss() { # out, command...
    local out=$1; shift
    redis-cli -p "$port" flushall >/dev/null
    # The previous client's connections may still be closing on the server:
    # redlab refuses a -c the server's maxclients cannot take now.
    for _ in $(seq 1 200); do
        [ "$(redis-cli -p "$port" info clients | tr -d '\r' | awk -F: '/^connected_clients/{print $2}')" -le 1 ] && break
        sleep 0.05
    done
    /usr/bin/time -f "%M" -o "$out.t" taskset -c "$CLIENT_CPU" "$@" >/dev/null 2>&1 || echo "failed: $*" >&2
    awk '{printf "%.1f\n", $1 / 1024}' "$out.t" >>"$out"
}
for C in 1 $RSS_CONNS; do
    P=1; [ "$C" = 1 ] && P=16
    : >"$tmp/rl.rss"; : >"$tmp/rb.rss"
    for _ in $(seq 1 "$ROUNDS"); do
        rss "$tmp/rl.rss" "$REDLAB" --master "$URL" -q --format json perf -n 100000 -P "$P" -c "$C" -d 3 \
            --rounds 1 --warmup 0 --keep-keys
        rss "$tmp/rb.rss" redis-benchmark -h 127.0.0.1 -p "$port" -t set -n 100000 -P "$P" -c "$C" -d 3 -q
    done
    a=$(median <"$tmp/rl.rss"); b=$(median <"$tmp/rb.rss")
    awk -v c="$C" -v a="$a" -v b="$b" 'BEGIN {printf "| %d | %.1f | %.1f | %+.1f | %.2fx |\n", c, a, b, a - b, a / b}'
done

echo
echo "5. Where one headline run's time goes (redlab --timings, client on CPU $CLIENT_CPU):"
echo
redis-cli -p "$port" flushall >/dev/null
taskset -c "$CLIENT_CPU" "$REDLAB" --timings --master "$URL" -q --format json perf -n 1000 -P 1000 \
    --rounds 1 --warmup 0 2>&1 >/dev/null | sed 's/^redlab: timings //; s/^/    /'
echo
echo "host: load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
