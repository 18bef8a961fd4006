#!/usr/bin/env bash
# Installs what the end-to-end rig needs, from the package registries only:
#   - tests/rig/node_modules  (npm ci from tests/rig/package-lock.json)
#   - tests/.venv             (python3 -m venv + pip install -r tests/requirements.txt)
#   - glewlwyd + sqlite3      (Debian packages, the second real OpenID provider; needs root or
#                              sudo, and apt-get)
#   - every crate Cargo.lock names, for every platform (cargo fetch): the deploy tests read the
#     Docker build context with `cargo metadata --offline`, which needs them all, including the
#     ones a Linux build never downloads
# Assumes only Node 20 + npm, Python 3.11 and Rust on a Debian 12 machine.
#
# Idempotent: each step writes a stamp file holding the hash of its lockfile (and of the
# interpreter version) and is skipped while that stamp still matches. Pass --force to redo both.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RIG="$ROOT/tests/rig"
VENV="$ROOT/tests/.venv"
REQS="$ROOT/tests/requirements.txt"
FORCE=0
if [[ "${1:-}" == "--force" ]]; then FORCE=1; fi

say() { printf 'setup: %s\n' "$*"; }

need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    say "error: '$1' not found on PATH ($2)"
    exit 1
  fi
}

hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

# Succeeds when the stamp file exists and holds exactly the expected key.
stamp_ok() {
  [[ "$FORCE" == 0 && -f "$1" && "$(cat "$1")" == "$2" ]]
}

setup_node() {
  need node "Node 20+ is required"
  need npm "npm is required"
  local key stamp="$RIG/node_modules/.cosmogate-setup-stamp"
  key="node=$(node --version) lock=$(hash_of "$RIG/package-lock.json")"
  if stamp_ok "$stamp" "$key"; then
    say "node: tests/rig/node_modules up to date"
    return
  fi
  say "node: npm ci in tests/rig ($(node --version))"
  (cd "$RIG" && npm ci --no-audit --no-fund --loglevel=error)
  printf '%s' "$key" >"$stamp"
  say "node: done"
}

setup_python() {
  need python3 "Python 3.11 is required"
  local key pyver stamp="$VENV/.cosmogate-setup-stamp"
  pyver="$(python3 -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
  key="python=$pyver reqs=$(hash_of "$REQS")"
  if stamp_ok "$stamp" "$key"; then
    say "python: tests/.venv up to date"
    return
  fi
  if [[ -d "$VENV" ]]; then
    say "python: recreating tests/.venv"
    rm -rf "$VENV"
  fi
  say "python: creating tests/.venv (Python $pyver)"
  python3 -m venv "$VENV"
  say "python: pip install -r tests/requirements.txt"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    --no-input -r "$REQS"
  printf '%s' "$key" >"$stamp"
  say "python: done"
}

# glewlwyd's postinst asks how to configure a database and, left alone, tries PostgreSQL and
# fails. The rig builds its own sqlite database per run, so answer "No configuration". The
# service is never started here: the rig runs its own instance on a loopback port.
setup_glewlwyd() {
  if dpkg-query -W -f='${Status}\n' glewlwyd sqlite3 2>/dev/null \
    | grep -c 'install ok installed' | grep -qx 2; then
    say "glewlwyd: installed ($(dpkg-query -W -f='${Version}' glewlwyd))"
    return
  fi
  need apt-get "glewlwyd comes from Debian's archive"
  local sudo=()
  if [[ "$(id -u)" != 0 ]]; then
    need sudo "installing glewlwyd needs root"
    sudo=(sudo)
  fi
  say "glewlwyd: apt-get update"
  "${sudo[@]}" apt-get update -qq
  say "glewlwyd: apt-get install glewlwyd sqlite3"
  echo "glewlwyd glewlwyd/config_type select No configuration" \
    | "${sudo[@]}" debconf-set-selections
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends glewlwyd sqlite3 >/dev/null
  say "glewlwyd: done"
}

# Quick when the registry cache already holds them: cargo fetch downloads only what is missing.
setup_cargo() {
  need cargo "Rust is required"
  say "cargo: fetch every crate of Cargo.lock"
  (cd "$ROOT" && cargo fetch --locked --quiet)
  say "cargo: done"
}

start=$SECONDS
setup_cargo
setup_node
setup_python
setup_glewlwyd
say "ready in $((SECONDS - start)) s"
