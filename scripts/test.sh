#!/usr/bin/env bash
# Runs the whole test suite: unit and integration tests of every crate, and the end-to-end
# tests that put the real Cosmos SDKs, a real OpenID provider and a Cosmos-compatible server
# around cosmogate. Installs what the tests need first (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --workspace --locked
