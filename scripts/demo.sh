#!/usr/bin/env bash
# Brings up an OpenID provider, a Cosmos-compatible server, a managed-identity token endpoint
# and cosmogate, all on 127.0.0.1; runs the sample apps through cosmogate with a writer, a
# reader and a forged token; prints the audit records; stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --locked -p cosmogate-server --bin cosmogate -p cosmogate-e2e --bin demo
target="${CARGO_TARGET_DIR:-target}/debug"
exec "$target/demo" --cosmogate "$target/cosmogate" "$@"
