#!/usr/bin/env bash
# Installs the Debian packages KeyVal builds and tests with. Idempotent and
# non-interactive: packages already present are left alone.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libcaf-dev                      # CAF 0.17.6: actors
  capnproto libcapnp-dev          # Cap'n Proto: schema compiler and library
  liblmdb-dev lmdb-utils          # LMDB
  libboost-test-dev               # Boost.Test
  libbenchmark-dev                # Google Benchmark (micro-benchmarks)
  clang libclang-rt-dev           # libFuzzer, ASan, UBSan for scripts/fuzz.sh
  libssl-dev openssl              # libcrypto (peer handshake HMAC), libssl (TLS); the CLI for certificates
  libcli11-dev                    # CLI11: command-line parsing and --help
  nlohmann-json3-dev              # nlohmann/json: JSON output and input
  libspdlog-dev                   # spdlog: log lines and levels
  libjemalloc-dev                 # jemalloc: the keyval binary's allocator (docs/DATAPATH.md)
  redis-tools redis-server python3-redis  # the Redis gateway's tests drive it with real Redis tools
  prometheus                      # promtool and a real scraper for the metrics endpoint's tests
)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
