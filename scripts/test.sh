#!/usr/bin/env bash
# The whole ottgate test suite: formatting, lints, and every test (unit, store conformance,
# real-server integration, headless Chromium, CLI processes). CI runs exactly this.
#
# It installs what the suite needs and is missing (Debian's chromium, chromium-driver,
# openssl — test certificates — and postgresql), and runs a throwaway PostgreSQL cluster
# on loopback for the tests that need one (scripts/postgres.sh); those tests fail, never
# skip, without it.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "==> installing ${missing[*]} (Debian packages)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# shellcheck source=scripts/postgres.sh
. scripts/postgres.sh
pg_start
trap pg_stop EXIT

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --no-fail-fast
    echo "==> the gateway suite again, on PostgreSQL"
    OTTGATE_TEST_BACKEND=postgres cargo nextest run -p ottgate-server --test gateway --locked --no-fail-fast
    cargo test --workspace --locked --doc
else
    cargo test --workspace --locked --no-fail-fast
    OTTGATE_TEST_BACKEND=postgres cargo test -p ottgate-server --test gateway --locked --no-fail-fast
fi
echo "==> all green"
