#!/usr/bin/env bash
# Compare redlab's perf engine with redis-benchmark, and with memtier_benchmark
# where one is available; SET with 3-byte values against one redis-server.
#
# Starts its own redis-server (127.0.0.1, a free port, no persistence) pinned
# to SERVER_CPU, and prints, in one run, four markdown tables:
#
#  1. Closed loop, for each placement: "one CPU" (client pinned to the
#     server's CPU, what a loaded box measures) and "separate CPUs" (client
#     on CLIENT_CPU, what a user with a client machine gets). Per config the
#     tools run alternately, ROUNDS times each (medians shown): ops/s as each
#     tool reports it, and client CPU seconds (user+sys, /usr/bin/time) per
#     million SETs, which stays meaningful when other load on the machine
#     makes ops/s noisy. For one-connection configs, examples/syscall_floor.rs
#     gives the least CPU any client can spend per million SETs here.
#  2. Open loop (separate CPUs): p50/p99 latency at each RATES entry, for
#     redlab (latency from each request's intended send time, and its own
#     send-time error) and memtier (--rate-limiting; latency from the actual
#     send), with the rate each achieved.
#  3. Peak RSS (/usr/bin/time %M) of each client at RSS_CONNS connections.
#  4. The whole process, -n 1000 -P 1000 against a lone master, start to
#     exit, timed by `hyperfine -N` (no shell in between) for each placement.
# The server is flushed before every run so memory does not grow.
#
# Environment:
#   REDLAB       the redlab binary (default: built here with the dist profile,
#                release plus whole-program LTO, ~5 min the first time). Called
#                with --keep-keys in the tables (the script flushes its own
#                server, so key removal is not timed); the whole-process case
#                runs as a user would, removal included.
#   REDLAB_BASE  a second redlab binary (say, the previous commit's) measured
#                alongside REDLAB in the same alternation: before/after columns.
#   MEMTIER      a memtier_benchmark binary; or
#   MEMTIER_SRC  a memtier_benchmark checkout (github.com/RedisLabs/
#                memtier_benchmark), built there if it has no binary yet
#                (needs autoconf automake libevent-dev libpcre3-dev
#                pkg-config zlib1g-dev libssl-dev). Neither: no memtier column.
#   N            requests per closed-loop run (default 1000000)
#   ROUNDS       runs per tool per config (default 3; median reported)
#   CONFIGS      closed-loop P:C pairs (default "1000:1 64:1 16:50 1:50")
#   PLACEMENTS   "one", "separate" or both (default "one separate")
#   RATES        open-loop rate:connections (default "1000:1 10000:10 100000:10")
#   OPEN_SECS    seconds per open-loop run (default 5)
#   RSS_CONNS    connection counts for the RSS table (default "1000 5000")
#   SECTIONS     which tables: closed open rss process (default all four)
#   SERVER_CPU   CPU for the server (default 0); CLIENT_CPU another (default 1)
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-1000000}
ROUNDS=${ROUNDS:-3}
CONFIGS=${CONFIGS:-"1000:1 64:1 16:50 1:50"}
PLACEMENTS=${PLACEMENTS:-"one separate"}
RATES=${RATES:-"1000:1 10000:10 100000:10"}
OPEN_SECS=${OPEN_SECS:-5}
RSS_CONNS=${RSS_CONNS:-"1000 5000"}
SECTIONS=${SECTIONS:-"closed open rss process"}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}

for tool in redis-server redis-benchmark redis-cli taskset jq hyperfine; do
    command -v "$tool" >/dev/null || { echo "bench/compare.sh needs $tool" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "bench/compare.sh needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
if [ -z "${REDLAB:-}" ]; then
    cargo build --profile dist --quiet >&2
    REDLAB="${CARGO_TARGET_DIR:-target}/dist/redlab"
fi
cargo build --release --quiet --example syscall_floor >&2
FLOOR="${CARGO_TARGET_DIR:-target}/release/examples/syscall_floor"

MEMTIER_NOTE=""
if [ -z "${MEMTIER:-}" ] && [ -n "${MEMTIER_SRC:-}" ]; then
    if [ ! -x "$MEMTIER_SRC/memtier_benchmark" ]; then
        echo "building memtier_benchmark in $MEMTIER_SRC" >&2
        (cd "$MEMTIER_SRC" && autoreconf -ivf && ./configure && make -j"$(nproc)") >&2
    fi
    MEMTIER="$MEMTIER_SRC/memtier_benchmark"
fi
if [ -z "${MEMTIER:-}" ]; then
    MEMTIER_NOTE="memtier_benchmark: not measured (set MEMTIER to a binary or MEMTIER_SRC to a checkout)"
fi
# Many-connection runs need the descriptors.
ulimit -n 20000 2>/dev/null || true

# A free port: one nothing answers on (bash /dev/tcp connect fails).
port=""
for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
done
[ -n "$port" ] || { echo "no free port found" >&2; exit 1; }

taskset -c "$SERVER_CPU" redis-server --bind 127.0.0.1 --port "$port" --save "" \
    --appendonly no --loglevel warning --maxclients 10100 >/dev/null 2>&1 &
server_pid=$!
tmp=$(mktemp -d)
trap 'kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 1 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.1
done
redis-cli -p "$port" ping >/dev/null || { echo "redis-server did not start" >&2; exit 1; }
URL="redis://127.0.0.1:$port"

median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else print a[int((NR+1)/2)]}'; }
ratio() { awk -v r="$1" -v b="$2" 'BEGIN {if (b > 0 && r == r + 0) printf "%.2fx", r / b; else print "n/a"}'; }
cpu_of() { case $1 in one) echo "$SERVER_CPU" ;; *) echo "$CLIENT_CPU" ;; esac; }

# run OUT CPU CMD...: flush, run pinned, stdout to OUT; OUT.time holds the
# client's "user sys maxrss_kb".
run() {
    local out=$1 cpu=$2; shift 2
    redis-cli -p "$port" flushall >/dev/null
    /usr/bin/time -f "%U %S %M" -o "$out.time" taskset -c "$cpu" "$@" >"$out" 2>"$out.err" || {
        echo "failed: $* (see below)" >&2; tail -5 "$out.err" >&2; echo "nan nan nan" >"$out.time"; }
}
cpu_per_million() { awk -v n="$2" '{if ($1 == "nan") print "nan"; else printf "%.3f\n", ($1 + $2) * 1e6 / n}' "$1.time"; }
rss_mib() { awk '{if ($3 == "nan") print "nan"; else printf "%.1f\n", $3 / 1024}' "$1.time"; }

# Closed-loop runs of each tool; append ops/s to $tmp/<tool>.ops, CPU to .cpum.
closed_redlab() { # name binary cpu P C
    run "$tmp/$1" "$3" "$2" --master "$URL" -q --format json perf -n "$N" -P "$4" -c "$5" -d 3 \
        --rounds 1 --warmup 0 --keep-keys
    jq -r '.details.throughput_ops_per_sec // "nan"' "$tmp/$1" 2>/dev/null >>"$tmp/$1.ops" || echo nan >>"$tmp/$1.ops"
    cpu_per_million "$tmp/$1" "$N" >>"$tmp/$1.cpum"
}
closed_rb() { # cpu P C
    run "$tmp/rb" "$1" redis-benchmark -h 127.0.0.1 -p "$port" -t set -n "$N" -P "$2" -c "$3" -d 3 -r "$N" -q
    tr '\r' '\n' <"$tmp/rb" | grep -o 'SET: [0-9.]* requests per second' | tail -1 | awk '{print $2}' >>"$tmp/rb.ops"
    cpu_per_million "$tmp/rb" "$N" >>"$tmp/rb.cpum"
}
closed_mt() { # cpu P C
    local per=$((N / $3))
    run "$tmp/mt" "$1" "$MEMTIER" -s 127.0.0.1 -p "$port" -P redis -t 1 -c "$3" --pipeline "$2" -n "$per" \
        --ratio 1:0 -d 3 --key-pattern P:P --key-maximum "$N" --hide-histogram --json-out-file "$tmp/mt.json"
    jq -r '."ALL STATS".Sets."Ops/sec"' "$tmp/mt.json" 2>/dev/null >>"$tmp/mt.ops" || echo nan >>"$tmp/mt.ops"
    cpu_per_million "$tmp/mt" "$((per * $3))" >>"$tmp/mt.cpum"
}

section() { case " $SECTIONS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

if section closed; then
  for placement in $PLACEMENTS; do
    cpu=$(cpu_of "$placement")
    echo
    echo "Closed loop, $placement CPU$( [ "$placement" = one ] && echo "" || echo "s"): server on CPU $SERVER_CPU, client on CPU $cpu; $N SETs, median of $ROUNDS"
    echo
    head="| config | redlab ops/s | redis-benchmark ops/s | ratio |"
    sep="|---|---:|---:|---:|"
    [ -n "${MEMTIER:-}" ] && { head="$head memtier ops/s |"; sep="$sep---:|"; }
    [ -n "${REDLAB_BASE:-}" ] && { head="$head base ops/s |"; sep="$sep---:|"; }
    head="$head redlab CPU s/M | redis-benchmark CPU s/M |"; sep="$sep---:|---:|"
    [ -n "${MEMTIER:-}" ] && { head="$head memtier CPU s/M |"; sep="$sep---:|"; }
    [ -n "${REDLAB_BASE:-}" ] && { head="$head base CPU s/M |"; sep="$sep---:|"; }
    echo "$head floor CPU s/M |"
    echo "$sep---:|"
    for cfg in $CONFIGS; do
        P=${cfg%%:*}; C=${cfg##*:}
        for t in rl base rb mt floor; do : >"$tmp/$t.ops"; : >"$tmp/$t.cpum"; done
        for round in $(seq 1 "$ROUNDS"); do
            closed_redlab rl "$REDLAB" "$cpu" "$P" "$C"
            closed_rb "$cpu" "$P" "$C"
            [ -n "${MEMTIER:-}" ] && closed_mt "$cpu" "$P" "$C"
            [ -n "${REDLAB_BASE:-}" ] && closed_redlab base "$REDLAB_BASE" "$cpu" "$P" "$C"
            if [ "$C" = 1 ]; then
                run "$tmp/floor" "$cpu" "$FLOOR" "$port" "$N" "$P"
                cpu_per_million "$tmp/floor" "$N" >>"$tmp/floor.cpum"
            fi
            echo "$placement P$P c$C round $round: redlab $(tail -1 "$tmp/rl.ops") redis-benchmark $(tail -1 "$tmp/rb.ops")" >&2
        done
        r=$(median <"$tmp/rl.ops"); b=$(median <"$tmp/rb.ops")
        line="| P$P c$C | $(printf %.0f "$r") | $(printf %.0f "$b") | $(ratio "$r" "$b") |"
        [ -n "${MEMTIER:-}" ] && line="$line $(printf %.0f "$(median <"$tmp/mt.ops")") |"
        [ -n "${REDLAB_BASE:-}" ] && line="$line $(printf %.0f "$(median <"$tmp/base.ops")") |"
        line="$line $(median <"$tmp/rl.cpum") | $(median <"$tmp/rb.cpum") |"
        [ -n "${MEMTIER:-}" ] && line="$line $(median <"$tmp/mt.cpum") |"
        [ -n "${REDLAB_BASE:-}" ] && line="$line $(median <"$tmp/base.cpum") |"
        fc=$(median <"$tmp/floor.cpum"); [ "$fc" = nan ] && fc="n/a"
        echo "$line $fc |"
    done
  done
fi

if section open; then
    echo
    echo "Open loop, separate CPUs (server CPU $SERVER_CPU, client CPU $CLIENT_CPU): SET -P 1, ${OPEN_SECS}s per run, median of $ROUNDS; latency in µs"
    echo
    head="| rate/s | c | redlab p50 | redlab p99 | redlab send-time error p50 / p99 | redlab ops/s |"
    sep="|---:|---:|---:|---:|---:|---:|"
    [ -n "${MEMTIER:-}" ] && { head="$head memtier p50 | memtier p99 | memtier ops/s |"; sep="$sep---:|---:|---:|"; }
    [ -n "${REDLAB_BASE:-}" ] && { head="$head base p50 | base p99 | base ops/s |"; sep="$sep---:|---:|---:|"; }
    echo "$head"; echo "$sep"
    for spec in $RATES; do
        R=${spec%%:*}; C=${spec##*:}
        for f in rl.p50 rl.p99 rl.e50 rl.e99 rl.ops mt.p50 mt.p99 mt.ops base.p50 base.p99 base.ops; do
            : >"$tmp/$f"
        done
        open_redlab() { # name binary
            run "$tmp/$1" "$CLIENT_CPU" "$2" --master "$URL" -q --format json perf --rate "$R" -c "$C" -P 1 -d 3 \
                --duration "${OPEN_SECS}s" --keyspace 100000 --rounds 1 --warmup 0 --keep-keys
            jq -r '.details.latency.p50_us' "$tmp/$1" >>"$tmp/$1.p50" 2>/dev/null || echo nan >>"$tmp/$1.p50"
            jq -r '.details.latency.p99_us' "$tmp/$1" >>"$tmp/$1.p99" 2>/dev/null || echo nan >>"$tmp/$1.p99"
            jq -r '.details.scheduler_send_error.p50_us // "nan"' "$tmp/$1" >>"$tmp/$1.e50" 2>/dev/null || echo nan >>"$tmp/$1.e50"
            jq -r '.details.scheduler_send_error.p99_us // "nan"' "$tmp/$1" >>"$tmp/$1.e99" 2>/dev/null || echo nan >>"$tmp/$1.e99"
            jq -r '.details.throughput_ops_per_sec' "$tmp/$1" >>"$tmp/$1.ops" 2>/dev/null || echo nan >>"$tmp/$1.ops"
        }
        for round in $(seq 1 "$ROUNDS"); do
            open_redlab rl "$REDLAB"
            if [ -n "${MEMTIER:-}" ]; then
                run "$tmp/mt" "$CLIENT_CPU" "$MEMTIER" -s 127.0.0.1 -p "$port" -P redis -t 1 -c "$C" --pipeline 1 \
                    --rate-limiting "$((R / C))" --test-time "$OPEN_SECS" --ratio 1:0 -d 3 --key-pattern R:R \
                    --key-maximum 100000 --hide-histogram --print-percentiles 50,99 --json-out-file "$tmp/mt.json"
                # memtier reports ms.
                jq -r '."ALL STATS".Sets."Percentile Latencies"."p50.00" * 1000' "$tmp/mt.json" >>"$tmp/mt.p50" 2>/dev/null || echo nan >>"$tmp/mt.p50"
                jq -r '."ALL STATS".Sets."Percentile Latencies"."p99.00" * 1000' "$tmp/mt.json" >>"$tmp/mt.p99" 2>/dev/null || echo nan >>"$tmp/mt.p99"
                jq -r '."ALL STATS".Sets."Ops/sec"' "$tmp/mt.json" >>"$tmp/mt.ops" 2>/dev/null || echo nan >>"$tmp/mt.ops"
            fi
            [ -n "${REDLAB_BASE:-}" ] && open_redlab base "$REDLAB_BASE"
            echo "open $R/s c$C round $round: redlab p50 $(tail -1 "$tmp/rl.p50") µs" >&2
        done
        f() { awk '{if ($1 == "nan") print "n/a"; else printf "%.0f\n", $1}'; }
        line="| $R | $C | $(median <"$tmp/rl.p50" | f) | $(median <"$tmp/rl.p99" | f) | $(median <"$tmp/rl.e50" | f) / $(median <"$tmp/rl.e99" | f) | $(median <"$tmp/rl.ops" | f) |"
        [ -n "${MEMTIER:-}" ] && line="$line $(median <"$tmp/mt.p50" | f) | $(median <"$tmp/mt.p99" | f) | $(median <"$tmp/mt.ops" | f) |"
        [ -n "${REDLAB_BASE:-}" ] && line="$line $(median <"$tmp/base.p50" | f) | $(median <"$tmp/base.p99" | f) | $(median <"$tmp/base.ops" | f) |"
        echo "$line"
    done
fi

if section rss; then
    echo
    echo "Peak RSS (MiB), closed loop, -P 1, 100000 SETs, client on CPU $CLIENT_CPU, median of $ROUNDS"
    echo
    head="| connections | redlab | redis-benchmark |"; sep="|---:|---:|---:|"
    [ -n "${MEMTIER:-}" ] && { head="$head memtier |"; sep="$sep---:|"; }
    [ -n "${REDLAB_BASE:-}" ] && { head="$head base |"; sep="$sep---:|"; }
    echo "$head"; echo "$sep"
    for C in $RSS_CONNS; do
        if [ "$(ulimit -n)" -lt $((C + 100)) ]; then
            echo "| $C | skipped: ulimit -n is $(ulimit -n) |"; continue
        fi
        for t in rl rb mt base; do : >"$tmp/$t.rss"; done
        for round in $(seq 1 "$ROUNDS"); do
            run "$tmp/rl" "$CLIENT_CPU" "$REDLAB" --master "$URL" -q --format json perf -n 100000 -P 1 -c "$C" -d 3 \
                --rounds 1 --warmup 0 --keep-keys
            rss_mib "$tmp/rl" >>"$tmp/rl.rss"
            run "$tmp/rb" "$CLIENT_CPU" redis-benchmark -h 127.0.0.1 -p "$port" -t set -n 100000 -P 1 -c "$C" -d 3 -q
            rss_mib "$tmp/rb" >>"$tmp/rb.rss"
            if [ -n "${MEMTIER:-}" ]; then
                run "$tmp/mt" "$CLIENT_CPU" "$MEMTIER" -s 127.0.0.1 -p "$port" -P redis -t 1 -c "$C" --pipeline 1 \
                    -n "$((100000 / C))" --ratio 1:0 -d 3 --hide-histogram
                rss_mib "$tmp/mt" >>"$tmp/mt.rss"
            fi
            if [ -n "${REDLAB_BASE:-}" ]; then
                run "$tmp/base" "$CLIENT_CPU" "$REDLAB_BASE" --master "$URL" -q --format json perf -n 100000 -P 1 \
                    -c "$C" -d 3 --rounds 1 --warmup 0 --keep-keys
                rss_mib "$tmp/base" >>"$tmp/base.rss"
            fi
        done
        line="| $C | $(median <"$tmp/rl.rss") | $(median <"$tmp/rb.rss") |"
        [ -n "${MEMTIER:-}" ] && line="$line $(median <"$tmp/mt.rss") |"
        [ -n "${REDLAB_BASE:-}" ] && line="$line $(median <"$tmp/base.rss") |"
        echo "$line"
    done
fi

if section process; then
    echo
    echo "Whole process, -n 1000 -P 1000 against a lone master, start to exit (hyperfine -N, 21 runs per block, blocks alternated $ROUNDS times; median of the block medians, ms)"
    echo
    head="| placement | redlab | redis-benchmark |"; sep="|---|---:|---:|"
    [ -n "${REDLAB_BASE:-}" ] && { head="$head base |"; sep="$sep---:|"; }
    echo "$head"; echo "$sep"
    for placement in $PLACEMENTS; do
        cpu=$(cpu_of "$placement")
        cmds=("$REDLAB --master $URL -q --format json perf -n 1000 -P 1000 --rounds 1 --warmup 0"
              "redis-benchmark -h 127.0.0.1 -p $port -t set -n 1000 -P 1000 -c 1 -d 3 -q")
        [ -n "${REDLAB_BASE:-}" ] && cmds+=("$REDLAB_BASE --master $URL -q --format json perf -n 1000 -P 1000 --rounds 1 --warmup 0")
        for t in 0 1 2; do : >"$tmp/hf.$t"; done
        for round in $(seq 1 "$ROUNDS"); do
            # hyperfine itself is pinned: the timed processes inherit the CPU,
            # with no taskset (or shell) inside the measurement.
            taskset -c "$cpu" hyperfine -N --style none --warmup 3 --runs 21 \
                --prepare "redis-cli -p $port flushall" --export-json "$tmp/hf.json" "${cmds[@]}" >/dev/null 2>&1
            for t in $(seq 0 $((${#cmds[@]} - 1))); do
                jq -r ".results[$t].median * 1000" "$tmp/hf.json" >>"$tmp/hf.$t"
            done
        done
        line="| $placement | $(median <"$tmp/hf.0" | awk '{printf "%.2f", $1}') | $(median <"$tmp/hf.1" | awk '{printf "%.2f", $1}') |"
        [ -n "${REDLAB_BASE:-}" ] && line="$line $(median <"$tmp/hf.2" | awk '{printf "%.2f", $1}') |"
        echo "$line"
    done
fi

if [ -n "$MEMTIER_NOTE" ]; then echo; echo "$MEMTIER_NOTE"; fi
