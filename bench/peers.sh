#!/usr/bin/env bash
# cosmogate's load benchmarks, beside nginx, HAProxy, Envoy and Caddy in the same runs.
# docs/performance.md explains each one and its results.
#
#   bench/peers.sh setup     build release cosmogate, copy the peer harness to a scratch folder
#                            and install its dependencies, oha into bench/.tools, the plot venv
#                            into bench/.venv, a self-signed loopback certificate, token pools
#   bench/peers.sh peers     the harness's closed-loop matrix (wrk) with cosmogate as its product:
#                            rows product-RS256 / product-ES256 beside direct, nginx, HAProxy,
#                            Envoy, Caddy
#   bench/peers.sh latency   the harness at a fixed rate (oha --latency-correction, RATE req/s)
#                            for direct, nginx and cosmogate; audit-latency.md splits cosmogate's
#                            rows, from its audit records, into its own part and the upstream leg
#   bench/peers.sh extra     rows the harness lacks, measured the same way in one run: fresh
#                            token per request (RS256, ES256), the TLS listener (and nginx's),
#                            peak memory per row, token-cache hits per row
#   bench/peers.sh growth    how cost grows: distinct live tokens, body size, connections, memory
#                            per idle connection
#   bench/peers.sh profile   callgrind instruction counts per request (cosmogate, nginx)
#   bench/peers.sh perf      perf on the native binary: task-clock, page faults and context
#                            switches per request, and a cpu-clock profile, per case
#   bench/peers.sh cores     where the proxy core's time goes, kernel included, for cosmogate
#                            and nginx under the same load: system calls per request, and perf
#                            samples of the whole core per request, by process, library and
#                            kernel function
#   bench/peers.sh report    tables (results/<run>/report.md) and growth CSVs from the raw data
#   bench/peers.sh plot      PNGs into docs/img/ from the growth CSVs (and bench/micro/data/)
#   bench/peers.sh all       setup peers latency extra growth report plot
#   bench/peers.sh check     the harness's accept/reject checks against cosmogate, and the
#                            credential-swap proof
#   bench/peers.sh product   (run by the harness as its PRODUCT_CMD) write a cosmogate config
#                            from the harness's BENCH_* variables and exec cosmogate
#
# Knobs (environment): PEERS_DIR (the harness, default /work/shared/bench/peers; copied, never
# modified), BENCH_WORK (scratch, default /tmp/cosmogate-bench), RESULTS (default
# bench/results/<UTC date-time>; phases of one invocation share it), DURATION (s, 10), WARMUP
# (s, 2), CONNS (harness, "16 64"), HARNESS_PEERS (the harness's PEERS list; default all), EXTRA_CONNS ("64"), FRESH_DURATION (s, 5), GROWTH_DURATION
# (s, 6), RATE (3000), TOKEN_CACHE_ENTRIES (cosmogate's limits.token_cache_entries; default:
# cosmogate's own), POOL_RS256 (150000), POOL_ES256 (80000), QUIET_MAX (%, 10), QUIET_WAIT
# (s, 180), LOADGEN_CPUS (0), PROXY_CPUS (1), SKIP_BUILD=1, RUN_TAG (suffix of the peers/latency
# folders, for repeat runs into one RESULTS: compare them with the harness's compare.py).
#
# Everything listens on 127.0.0.1 only. Every process this script starts is stopped by PID when
# it exits. Benchmarks are not part of CI.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
MODE=${1:-all}

PEERS_DIR=${PEERS_DIR:-/work/shared/bench/peers}
WORK=${BENCH_WORK:-/tmp/cosmogate-bench}
HARNESS=$WORK/peers               # writable copy of the harness
RUN=$WORK/run                     # pid files, logs, configs, audit files of this script
POOLS=$WORK/pools
if [[ -z ${RESULTS:-} ]]; then
  if [[ $MODE == report || $MODE == plot ]]; then   # the latest run
    RESULTS=$(find "$BENCH/results" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | sort | tail -1)
    [[ -n $RESULTS ]] || { echo "no run under bench/results; set RESULTS" >&2; exit 2; }
  else
    RESULTS=$BENCH/results/$(date -u +%Y%m%d-%H%M)
  fi
fi
# The harness runs in its own directory: a relative RESULTS must not follow it there.
[[ $RESULTS == /* ]] || RESULTS=$PWD/$RESULTS
CG=${CG:-$ROOT/target/release/cosmogate}   # CG=<binary> measures another build (A/B)
TOOLS=$BENCH/.tools
VENV=$BENCH/.venv
HPY=$HARNESS/.venv/bin/python       # the harness's venv (pyjwt, cryptography)

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-"16 64"}
EXTRA_CONNS=${EXTRA_CONNS:-64}
FRESH_DURATION=${FRESH_DURATION:-5}
GROWTH_DURATION=${GROWTH_DURATION:-6}
RATE=${RATE:-3000}
POOL_RS256=${POOL_RS256:-150000}
POOL_ES256=${POOL_ES256:-80000}
QUIET_MAX=${QUIET_MAX:-10}
QUIET_WAIT=${QUIET_WAIT:-180}
LOADGEN_CPUS=${LOADGEN_CPUS-0}
PROXY_CPUS=${PROXY_CPUS-1}
TOKEN_LEVELS=${TOKEN_LEVELS:-"1 10 100 1000 10000 30000 100000"}
BODY_SIZES=${BODY_SIZES:-"1024 16384 65536 262144 1048576 2097152"}
CONN_LEVELS=${CONN_LEVELS:-"16 64 256 1000"}
IDLE_LEVELS=${IDLE_LEVELS:-"16,64,256,1000,2000"}
OHA_VERSION=${OHA_VERSION:-1.16.0}

# Ports (all 127.0.0.1). The harness owns 18081 (upstream stand-in), 18082 (nginx), 18083-18088
# and 18090 (its product). Ours:
P_CG=18092        # cosmogate, plain HTTP, harness upstream
P_CG_TLS=18093    # cosmogate, TLS listener, harness upstream
P_CG_BODY=18094   # cosmogate in front of the body-size upstream
P_CG_PROOF=18095  # cosmogate in front of the logging upstream (credential-swap proof)
P_NGX_TLS=18182   # nginx TLS pass-through
P_BODY_UP=18191   # body-size upstream (nginx, static documents)
P_BODY_NGX=18192  # nginx pass-through to it
P_PROOF_UP=18194  # same documents, Authorization kind logged
P_JWKS=18098      # the harness's JWKS file over http
P_TOKEN=18099     # managed-identity token endpoint stand-in (tests/rig/token-endpoint.mjs)
A_PRODUCT=18290 A_CG=18292 A_CG_TLS=18293 A_CG_BODY=18294 A_CG_PROOF=18295   # admin listeners
DOC_PATH=/dbs/benchdb/colls/orders/docs/order-000001
BENCH_SCOPE=${BENCH_SCOPE:-/dbs/benchdb/colls/orders}

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

# A variable the harness exports, read from its run.sh (so both sides agree on it).
harness_var() {
  local v
  v=$(grep -oP "^export $1=\\K.*" "$PEERS_DIR/run.sh" | head -1) || true
  [[ -n $v ]] || die "$1 not found in $PEERS_DIR/run.sh"
  v=${v//\$HERE/$HARNESS}
  v=${v#\'}; v=${v%\'}
  echo "$v"
}

# ----------------------------------------------------------------------------- processes
declare -A PID=()
STARTED=()
pin() { if [[ -n $1 ]]; then echo "taskset -c $1"; fi; }

start() {  # start NAME CPUS CMD...   (stdout+stderr to $RUN/NAME.log)
  local name=$1 cpus=$2; shift 2
  # shellcheck disable=SC2046
  $(pin "$cpus") "$@" >"$RUN/$name.log" 2>&1 &
  PID[$name]=$!
  STARTED+=("$name")
  log "started $name (pid ${PID[$name]}${cpus:+, cpu $cpus})"
}

stop() {  # stop NAME
  local p=${PID[$1]:-} i
  [[ -n $p ]] || return 0
  kill -TERM "$p" 2>/dev/null || true
  for i in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$p" 2>/dev/null && { log "$1 (pid $p) ignored TERM; KILL"; kill -KILL "$p" 2>/dev/null || true; }
  wait "$p" 2>/dev/null || true
  unset "PID[$1]"
  local keep=() n
  for n in "${STARTED[@]}"; do [[ $n == "$1" ]] || keep+=("$n"); done
  STARTED=("${keep[@]}")
}

stop_all() {
  local i
  for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do stop "${STARTED[i]}"; done
}
trap stop_all EXIT
trap 'exit 130' INT TERM

wait_port() {  # wait_port PORT NAME [SECONDS]
  local i
  for i in $(seq $((${3:-15} * 10))); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    if [[ -n ${PID[$2]:-} ]] && ! kill -0 "${PID[$2]}" 2>/dev/null; then
      tail -20 "$RUN/$2.log" >&2; die "$2 exited during startup"; fi
    sleep 0.1
  done
  tail -20 "$RUN/$2.log" >&2
  die "$2 not listening on $1"
}

# ----------------------------------------------------------------------------- meters
descendants() {  # the pid and all its descendants
  local p=$1 f c
  echo "$p"
  for f in /proc/"$p"/task/*/children; do
    [[ -r $f ]] || continue
    for c in $(<"$f"); do descendants "$c"; done
  done
}
cpu_ticks() {  # utime+stime of a process tree, in clock ticks
  [[ -n ${1:-} ]] || { echo 0; return; }
  local sum=0 p rest
  for p in $(descendants "$1"); do
    rest=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null) || continue
    # fields after "pid (comm) ": state ppid pgrp session tty tpgid flags minflt cminflt
    # majflt cmajflt utime stime
    set -- $rest
    sum=$((sum + ${12} + ${13}))
  done
  echo "$sum"
}
status_kib() {  # status_kib PID FIELD (VmHWM, VmRSS), summed over the tree
  [[ -n ${1:-} ]] || { echo 0; return; }
  local sum=0 p v
  for p in $(descendants "$1"); do
    v=$(awk -v f="$2:" '$1 == f {print $2}' "/proc/$p/status" 2>/dev/null) || continue
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}
reset_peak() {  # VmHWM back to the current RSS (root, or the process's owner)
  [[ -n ${1:-} ]] || return 0
  local p
  for p in $(descendants "$1"); do echo 5 >"/proc/$p/clear_refs" 2>/dev/null || true; done
}
machine_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
busy_pct_1s() {
  local a b
  a=$(machine_ticks); sleep 1; b=$(machine_ticks)
  awk -v a="$a" -v b="$b" 'BEGIN{split(a,x," "); split(b,y," "); d=y[2]-x[2]; printf "%d", (d > 0) ? 100*(y[1]-x[1])/d : 0}'
}
quiet_gate() {  # waits (bounded) until foreign load is under QUIET_MAX %; prints the last reading
  local waited=0 pct
  while :; do
    pct=$(busy_pct_1s)
    if (( pct <= QUIET_MAX || waited >= QUIET_WAIT )); then
      (( pct > QUIET_MAX )) && log "  machine still ${pct}% busy after ${waited}s: measuring anyway (recorded)"
      echo "$pct"; return
    fi
    (( waited == 0 )) && log "  waiting for a quiet machine (${pct}% busy)"
    waited=$((waited + 1))
  done
}
metric() {  # metric ADMIN_PORT NAME -> value or 0
  [[ -n ${1:-} ]] || { echo 0; return; }
  curl -s --max-time 2 "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n {print $2; f=1} END{if(!f) print 0}'
}

# measure ID CONNS SECS PROXY_PID UPSTREAM_PID ADMIN_PORT EXTRA_JSON -- WRK_TAIL...
# WRK_TAIL is what follows wrk's common options: headers, -s script, the URL, `--` script args.
# A warmup of WARMUP s runs first, with the array WARM as its tail when set (else the same).
# Appends one JSON line to $RESULTS/$PHASE/runs.jsonl; wrk's output goes to raw/ID.txt.
WARM=()
measure() {
  local id=$1 c=$2 secs=$3 pid=$4 upid=$5 admin=$6 extra=$7; shift 8
  local out=$RESULTS/$PHASE raw quiet p0 p1 u0 u1 m0 m1 t0 t1 lt h0 h1 s0 s1 v0 v1 d0 d1 hwm rss
  raw=$out/raw/$id.txt
  mkdir -p "$out/raw"
  quiet=$(quiet_gate)
  if (( WARMUP > 0 )); then
    local tail=("$@"); ((${#WARM[@]})) && tail=("${WARM[@]}")
    # shellcheck disable=SC2046
    $(pin "$LOADGEN_CPUS") wrk -t1 -c"$c" -d"${WARMUP}s" --timeout 5s "${tail[@]}" >"$out/raw/$id.warmup.txt" 2>&1 || true
  fi
  reset_peak "$pid"
  h0=$(metric "$admin" cosmogate_token_cache_hits); v0=$(metric "$admin" cosmogate_token_cache_misses)
  s0=$(metric "$admin" cosmogate_signature_verifications); d0=$(metric "$admin" cosmogate_token_cache_deferred)
  p0=$(cpu_ticks "$pid"); u0=$(cpu_ticks "$upid"); m0=$(machine_ticks); t0=$(date +%s.%N)
  # shellcheck disable=SC2046
  lt=$( { TIMEFORMAT='%U %S'; time $(pin "$LOADGEN_CPUS") wrk -t1 -c"$c" -d"${secs}s" --latency --timeout 5s "$@" >"$raw" 2>&1; } 2>&1 ) || true
  t1=$(date +%s.%N); p1=$(cpu_ticks "$pid"); u1=$(cpu_ticks "$upid"); m1=$(machine_ticks)
  h1=$(metric "$admin" cosmogate_token_cache_hits); v1=$(metric "$admin" cosmogate_token_cache_misses)
  s1=$(metric "$admin" cosmogate_signature_verifications); d1=$(metric "$admin" cosmogate_token_cache_deferred)
  hwm=$(status_kib "$pid" VmHWM); rss=$(status_kib "$pid" VmRSS)
  printf '{"id":"%s","phase":"%s","conns":%s,"wall":%s,"hz":%s,"proxy_ticks":%s,"upstream_ticks":%s,"loadgen_cpu":"%s","machine0":"%s","machine1":"%s","ncpu":%s,"quiet_pct":%s,"vmhwm_kib":%s,"vmrss_kib":%s,"cache_hits":%s,"cache_misses":%s,"signatures":%s,"deferred":%s%s}\n' \
    "$id" "$PHASE" "$c" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}')" "$(getconf CLK_TCK)" \
    "$((p1 - p0))" "$((u1 - u0))" "$lt" "$m0" "$m1" "$(nproc)" "$quiet" "$hwm" "$rss" \
    "$(awk -v a="$h0" -v b="$h1" 'BEGIN{print b-a}')" "$(awk -v a="$v0" -v b="$v1" 'BEGIN{print b-a}')" \
    "$(awk -v a="$s0" -v b="$s1" 'BEGIN{print b-a}')" "$(awk -v a="$d0" -v b="$d1" 'BEGIN{print b-a}')" \
    "${extra:+,$extra}" >>"$out/runs.jsonl"
  local note=""
  [[ $* == *" once "* ]] && grep -q 'wrapped [1-9]' "$raw" && note=" (token pool WRAPPED: not all tokens fresh)"
  log "  $id: $(awk '/^Requests\/sec/ {print $2 " req/s"}' "$raw")$note"
  WARM=()
}

# ----------------------------------------------------------------------------- cosmogate config
# The policy equivalent of BENCH_POLICY, in cosmogate's policy language (docs/policy.md). Only
# the harness's two forms are understood: `claim==value` and `"value" in claim`, joined by &&.
write_policy() {  # write_policy FILE
  local expr=$BENCH_POLICY term conds=()
  local IFS=$'\n'
  for term in $(sed 's/&&/\n/g' <<<"$expr"); do
    term=$(sed 's/^[[:space:]]*//; s/[[:space:]]*$//' <<<"$term")
    if [[ $term =~ ^([A-Za-z_][A-Za-z0-9_.]*)[[:space:]]*==[[:space:]]*\"?([^\"]*)\"?$ ]]; then
      conds+=("{ claim = \"${BASH_REMATCH[1]}\", equals = \"${BASH_REMATCH[2]}\" }")
    elif [[ $term =~ ^\"([^\"]*)\"[[:space:]]+in[[:space:]]+([A-Za-z_][A-Za-z0-9_.]*)$ ]]; then
      conds+=("{ claim = \"${BASH_REMATCH[2]}\", contains = \"${BASH_REMATCH[1]}\" }")
    else
      die "BENCH_POLICY term not understood: $term"
    fi
  done
  unset IFS
  local joined
  joined=$(printf '  %s,\n' "${conds[@]}")
  cat >"$1" <<EOF
# Generated by bench/peers.sh from BENCH_POLICY = '$BENCH_POLICY'.
version = 1

[[roles]]
name = "bench-reader"
builtin = "data-reader"
scopes = ["$BENCH_SCOPE"]

[[bindings]]
role = "bench-reader"
issuer = "$BENCH_ISSUER"
all = [
$joined
]
EOF
}

# write_config FILE LISTEN ADMIN UPSTREAM TLS(0|1) AUDIT_FILE
write_config() {
  local file=$1 listen=$2 admin=$3 upstream=$4 tls=$5 audit=$6 dir
  dir=$(dirname "$file")
  mkdir -p "$dir"
  [[ -f $dir/policy.toml ]] || write_policy "$dir/policy.toml"
  {
    echo "# Generated by bench/peers.sh; see docs/performance.md."
    echo "[listen]"
    echo "address = \"$listen\""
    if [[ $tls == 1 ]]; then
      echo "tls_cert_file = \"$RUN/tls/cert.pem\""
      echo "tls_key_file = \"$RUN/tls/key.pem\""
    else
      echo "tls = false"
    fi
    cat <<EOF

[[issuers]]
issuer = "$BENCH_ISSUER"
audiences = ["$BENCH_AUDIENCE"]
jwks_uri = "http://127.0.0.1:$P_JWKS/$(basename "$BENCH_JWKS")"
algorithms = ["RS256", "ES256"]

[policy]
file = "policy.toml"

[upstream]
endpoint = "${upstream%/}/"

[upstream.credential]
kind = "managed_identity"
endpoint = "http://127.0.0.1:$P_TOKEN/metadata/identity/oauth2/token"

[audit]
output = "$audit"

[admin]
address = "127.0.0.1:$admin"

[log]
level = "warn"
EOF
    if [[ -n ${TOKEN_CACHE_ENTRIES:-} ]]; then
      printf '\n[limits]\ntoken_cache_entries = %s\n' "$TOKEN_CACHE_ENTRIES"
    fi
  } >"$file"
}

bench_env() {  # the harness's settings, for phases run outside it
  BENCH_ISSUER=${BENCH_ISSUER:-$(harness_var BENCH_ISSUER)}
  BENCH_AUDIENCE=${BENCH_AUDIENCE:-$(harness_var BENCH_AUDIENCE)}
  BENCH_JWKS=${BENCH_JWKS:-$(harness_var BENCH_JWKS)}
  BENCH_POLICY=${BENCH_POLICY:-$(harness_var BENCH_POLICY)}
  export BENCH_ISSUER BENCH_AUDIENCE BENCH_JWKS BENCH_POLICY
}

# ----------------------------------------------------------------------------- phases
do_setup() {
  mkdir -p "$WORK" "$RUN" "$POOLS"
  if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    log "cargo build --release -p cosmogate-server"
    (cd "$ROOT" && cargo build --release --locked -p cosmogate-server)
  fi
  [[ -x $CG ]] || die "$CG missing"
  log "copying the harness from $PEERS_DIR to $HARNESS"
  mkdir -p "$HARNESS"
  # Its keys/, .venv/, run/ and results/ stay as they are between copies.
  (cd "$PEERS_DIR" && tar cf - --exclude=./keys --exclude=./.venv --exclude=./run --exclude=./results .) \
    | (cd "$HARNESS" && tar xf - && chmod -R u+w .)
  (cd "$HARNESS" && ./run.sh setup)
  if [[ ! -x $TOOLS/bin/oha ]]; then
    log "cargo install oha --locked --root bench/.tools (several minutes on 2 cores)"
    cargo install oha --locked --root "$TOOLS" ${OHA_VERSION:+--version "$OHA_VERSION"}
  fi
  if [[ ! -x $VENV/bin/python ]] || ! "$VENV/bin/python" -c 'import matplotlib' 2>/dev/null; then
    log "creating bench/.venv from bench/requirements.txt"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$BENCH/requirements.txt"
  fi
  command -v node >/dev/null || die "node (20+) is needed for tests/rig/token-endpoint.mjs"
  mkdir -p "$RUN/tls"
  if [[ ! -f $RUN/tls/cert.pem ]]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
      -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
      -keyout "$RUN/tls/key.pem" -out "$RUN/tls/cert.pem" 2>/dev/null
  fi
  log "token pools (RS256 $POOL_RS256, ES256 $POOL_ES256)"
  "$HPY" "$BENCH/lib/mint_pool.py" "$HARNESS" RS256 "$POOL_RS256" "$POOLS/rs256.txt"
  "$HPY" "$BENCH/lib/mint_pool.py" "$HARNESS" ES256 "$POOL_ES256" "$POOLS/es256.txt"
  mkdir -p "$RUN/tokens"
  "$HPY" "$HARNESS/mint.py" tokens "$RUN/tokens" >/dev/null
}

# The single tokens (rs256-good.jwt and the rest) live an hour. A phase that finds them expired,
# or expiring within TOKEN_MARGIN seconds (900), mints new ones first: an expired token makes
# every "repeated token" row a row of 401s that still verify a signature each.
fresh_tokens() {
  local exp
  exp=$("$HPY" -c 'import base64, json, sys
p = open(sys.argv[1]).read().strip().split(".")[1]
print(json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))["exp"])' "$RUN/tokens/rs256-good.jwt" 2>/dev/null || echo 0)
  if (( exp < $(date +%s) + ${TOKEN_MARGIN:-900} )); then
    log "minting new single tokens (the old ones expire at $exp)"
    mkdir -p "$RUN/tokens"
    "$HPY" "$HARNESS/mint.py" tokens "$RUN/tokens" >/dev/null
  fi
}

helpers_up() {  # the JWKS file over http, and the managed-identity token endpoint stand-in
  mkdir -p "$RUN"
  fresh_tokens
  start jwks "$LOADGEN_CPUS" python3 -m http.server "$P_JWKS" --bind 127.0.0.1 --directory "$(dirname "$BENCH_JWKS")"
  wait_port "$P_JWKS" jwks
  start token-endpoint "$LOADGEN_CPUS" node "$ROOT/tests/rig/token-endpoint.mjs" --port "$P_TOKEN" \
    --lifetime 86400 --log "$RUN/token-endpoint.jsonl"
  wait_port "$P_TOKEN" token-endpoint
}

start_cg() {  # start_cg NAME PORT ADMIN UPSTREAM TLS
  local name=$1
  write_config "$RUN/cg/$name.toml" "127.0.0.1:$2" "$3" "$4" "$5" "$RUN/cg/$name-audit.jsonl"
  "$CG" check --config "$RUN/cg/$name.toml" >"$RUN/cg/$name.check.txt" 2>&1 \
    || { cat "$RUN/cg/$name.check.txt" >&2; die "cosmogate check failed for $name"; }
  : >"$RUN/cg/$name-audit.jsonl"
  start "$name" "$PROXY_CPUS" "$CG" serve --config "$RUN/cg/$name.toml"
  wait_port "$2" "$name" 30
}

start_harness_upstreams() {  # the harness's upstream stand-in and nginx pass-through, its configs
  mkdir -p "$RUN/tmp"
  start upstream "$LOADGEN_CPUS" nginx -p "$RUN/" -e "$RUN/upstream-error.log" -c "$HARNESS/conf/upstream-nginx.conf"
  wait_port 18081 upstream
  start nginx "$PROXY_CPUS" nginx -p "$RUN/" -e "$RUN/proxy-nginx-error.log" -c "$HARNESS/conf/proxy-nginx.conf"
  wait_port 18082 nginx
}

meta() {  # meta FILE: what ran, where
  {
    echo "date=$(date -Is) host=$(hostname) nproc=$(nproc) kernel=$(uname -r)"
    echo "cosmogate=$(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- crates || echo +dirty)" \
      "binary=$CG ($(sha256sum "$CG" | cut -c1-12), built $(date -u -r "$CG" +%FT%TZ))" \
      "nginx=$(nginx -v 2>&1 | sed 's/.*\///') wrk=$(wrk -v 2>&1 | head -1 | awk '{print $2}')" \
      "oha=$("$TOOLS/bin/oha" --version 2>/dev/null | awk '{print $2}')"
    echo "DURATION=$DURATION WARMUP=$WARMUP CONNS=$CONNS EXTRA_CONNS=$EXTRA_CONNS FRESH_DURATION=$FRESH_DURATION GROWTH_DURATION=$GROWTH_DURATION RATE=$RATE"
    echo "LOADGEN_CPUS=$LOADGEN_CPUS PROXY_CPUS=$PROXY_CPUS QUIET_MAX=$QUIET_MAX"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  } >"$1"
}

run_harness() {  # run_harness RESULT_SUBDIR [VAR=VALUE...]: the harness with cosmogate as product
  local sub=$1; shift
  mkdir -p "$RESULTS"
  helpers_up
  log "harness run -> $RESULTS/$sub"
  (cd "$HARNESS" && env PATH="$TOOLS/bin:$PATH" SKIP_SETUP=1 RESULTS="$RESULTS/$sub" \
     PRODUCT_CMD="$BENCH/peers.sh product" QUIET_MAX="$QUIET_MAX" QUIET_WAIT="$QUIET_WAIT" \
     DURATION="$DURATION" WARMUP="$WARMUP" "$@" ./run.sh) || die "harness run failed"
  cp "$RUN/cg/product.toml" "$RESULTS/$sub/cosmogate.toml"
  cp "$RUN/cg/policy.toml" "$RESULTS/$sub/policy.toml"
  stop token-endpoint; stop jwks
}

do_product() {  # exec'd by the harness, pinned by it; BENCH_* come from it
  : "${BENCH_LISTEN:?run by the harness}" "${BENCH_UPSTREAM:?}" "${BENCH_JWKS:?}" "${BENCH_ISSUER:?}" \
    "${BENCH_AUDIENCE:?}" "${BENCH_POLICY:?}"
  # BENCH_UPSTREAM_TOKEN is not used: cosmogate sends its own managed-identity token, from the
  # token endpoint stand-in this script started before the harness.
  mkdir -p "$RUN/cg"
  write_policy "$RUN/cg/policy.toml"
  write_config "$RUN/cg/product.toml" "$BENCH_LISTEN" "$A_PRODUCT" "$BENCH_UPSTREAM" 0 "$RUN/cg/product-audit.jsonl"
  : >"$RUN/cg/product-audit.jsonl"
  exec "$CG" serve --config "$RUN/cg/product.toml"
}

do_peers() { run_harness "peers${RUN_TAG:-}" CONNS="$CONNS" ${HARNESS_PEERS:+PEERS="$HARNESS_PEERS"}; }

do_latency() {
  local sub="latency${RUN_TAG:-}"
  run_harness "$sub" LOADGEN=oha RATE="$RATE" CONNS="${LATENCY_CONNS:-64}" PEERS="direct nginx"
  # cosmogate's own view of the same requests: its part of the latency and the upstream leg's.
  python3 "$BENCH/lib/audit_latency.py" "$RUN/cg/product-audit.jsonl" "$HARNESS/run/tokens" "$WARMUP" \
    >"$RESULTS/$sub/audit-latency.md" || log "audit latency breakdown failed"
}

do_extra() {
  PHASE=extra
  mkdir -p "$RESULTS/$PHASE"; meta "$RESULTS/$PHASE/meta.txt"
  sed "s#@RUN@#$RUN#g" "$BENCH/conf/tls-proxy.nginx.conf" >"$RUN/tls-proxy.nginx.conf"
  helpers_up
  start_harness_upstreams
  start nginx-tls "$PROXY_CPUS" nginx -p "$RUN/" -e "$RUN/tls-proxy-error.log" -c "$RUN/tls-proxy.nginx.conf"
  wait_port "$P_NGX_TLS" nginx-tls
  # HAProxy's native JWT checks, from the harness's config (its key paths are relative to it).
  start haproxy "$PROXY_CPUS" env -C "$HARNESS" haproxy -db -f conf/haproxy-jwt.cfg
  wait_port 18083 haproxy
  start_cg cg "$P_CG" "$A_CG" http://127.0.0.1:18081 0
  start_cg cg-tls "$P_CG_TLS" "$A_CG_TLS" http://127.0.0.1:18081 1
  local rs es c up=${PID[upstream]}
  rs=$(<"$RUN/tokens/rs256-good.jwt"); es=$(<"$RUN/tokens/es256-good.jwt")
  for c in $EXTRA_CONNS; do
    local h="Authorization: Bearer $rs" doc=$DOC_PATH
    measure "direct.c$c" "$c" "$DURATION" "" "$up" "" '"row":"direct"' -- -H "$h" "http://127.0.0.1:18081$doc"
    measure "nginx.c$c" "$c" "$DURATION" "${PID[nginx]}" "$up" "" '"row":"nginx"' -- -H "$h" "http://127.0.0.1:18082$doc"
    measure "nginx-tls.c$c" "$c" "$DURATION" "${PID[nginx-tls]}" "$up" "" '"row":"nginx-tls"' -- -H "$h" "https://127.0.0.1:$P_NGX_TLS$doc"
    measure "haproxy-RS256.c$c" "$c" "$DURATION" "${PID[haproxy]}" "$up" "" '"row":"haproxy-RS256"' -- -H "$h" "http://127.0.0.1:18083$doc"
    measure "haproxy-ES256.c$c" "$c" "$DURATION" "${PID[haproxy]}" "$up" "" '"row":"haproxy-ES256"' -- -H "Authorization: Bearer $es" "http://127.0.0.1:18083$doc"
    measure "cg-RS256.c$c" "$c" "$DURATION" "${PID[cg]}" "$up" "$A_CG" '"row":"cg-RS256"' -- -H "$h" "http://127.0.0.1:$P_CG$doc"
    measure "cg-ES256.c$c" "$c" "$DURATION" "${PID[cg]}" "$up" "$A_CG" '"row":"cg-ES256"' -- -H "Authorization: Bearer $es" "http://127.0.0.1:$P_CG$doc"
    measure "cg-tls-RS256.c$c" "$c" "$DURATION" "${PID[cg-tls]}" "$up" "$A_CG_TLS" '"row":"cg-tls-RS256"' -- -H "$h" "https://127.0.0.1:$P_CG_TLS$doc"
    # Fresh token per request: warm up with the repeated token (connections, allocator), then
    # every measured request carries a pool token cosmogate has never seen.
    measure_fresh "cg-fresh-RS256.c$c" "$c" rs256 "$rs"
    measure_fresh "cg-fresh-ES256.c$c" "$c" es256 "$es"
  done
  # The signature floor on the proxy's core, same run: OpenSSL's RS256 / ES256 verify rate.
  # shellcheck disable=SC2046
  $(pin "$PROXY_CPUS") openssl speed -seconds 3 rsa2048 ecdsap256 2>/dev/null \
    | grep -E '^(rsa 2048|[[:space:]]*256 bits ecdsa)' >"$RESULTS/$PHASE/openssl-speed.txt" || true
  # The harness's Rust crypto floor (jsonwebtoken + aws-lc-rs, pinned to the proxy core). Its
  # first call builds in $WORK/jwtbench (minutes); CRYPTOBENCH=0 skips it.
  if [[ ${CRYPTOBENCH:-1} == 1 ]]; then
    stop_all
    CPU=$PROXY_CPUS WORKDIR=$WORK/jwtbench "$HARNESS/cryptobench/run.sh" >"$RESULTS/$PHASE/cryptobench.txt" 2>&1 \
      || log "cryptobench failed: see $RESULTS/$PHASE/cryptobench.txt"
  fi
  stop_all
}

# measure_fresh ID CONNS POOL WARM_TOKEN: the next unused slice of the pool, each token once
declare -A POOL_OFFSET=()
measure_fresh() {
  local id=$1 c=$2 pool=$3 warm=$4 off=${POOL_OFFSET[$3]:-0} sent
  local url="http://127.0.0.1:$P_CG$DOC_PATH"
  WARM=(-H "Authorization: Bearer $warm" "$url")
  measure "$id" "$c" "$FRESH_DURATION" "${PID[cg]}" "${PID[upstream]}" "$A_CG" \
    "\"row\":\"${id%%.c*}\",\"pool_name\":\"$pool\",\"pool_offset\":$off" \
    -- -s "$BENCH/lua/pool.lua" "$url" -- "$POOLS/$pool.txt" once 0 "$off"
  sent=$(awk '/^token pool/ {gsub(",", "", $6); print $6}' "$RESULTS/$PHASE/raw/$id.txt")
  POOL_OFFSET[$pool]=$((off + ${sent:-0}))
}

start_bodies() {  # documents of each size, their upstream and an nginx pass-through in front
  mkdir -p "$RUN/docs" "$RUN/tmp"
  local size
  for size in $BODY_SIZES; do
    [[ -f $RUN/docs/doc-$size ]] || python3 - "$RUN/docs/doc-$size" "$size" <<'PY'
import json, sys
path, size = sys.argv[1], int(sys.argv[2])
doc = {"id": f"doc-{size}", "pk": "tenant-contoso", "_rid": "Sl8fALN4sw4CAAAAAAAAA1==",
       "_etag": "\"0000d986-0000-0800-0000-5e8a7c5a0001\"", "_ts": 1586134107, "pad": ""}
doc["pad"] = "x" * (size - len(json.dumps(doc, separators=(",", ":"))))
text = json.dumps(doc, separators=(",", ":"))
assert len(text) == size, (len(text), size)
open(path, "w").write(text)
PY
  done
  start bodies-upstream "$LOADGEN_CPUS" nginx -p "$RUN/" -e "$RUN/bodies-upstream-error.log" -c "$BENCH/conf/bodies-upstream.nginx.conf"
  wait_port "$P_BODY_UP" bodies-upstream
  start bodies-proxy "$PROXY_CPUS" nginx -p "$RUN/" -e "$RUN/bodies-proxy-error.log" -c "$BENCH/conf/bodies-proxy.nginx.conf"
  wait_port "$P_BODY_NGX" bodies-proxy
}

do_growth() {
  PHASE=growth
  mkdir -p "$RESULTS/$PHASE"; meta "$RESULTS/$PHASE/meta.txt"
  helpers_up
  start_harness_upstreams
  start_bodies
  start_cg cg "$P_CG" "$A_CG" http://127.0.0.1:18081 0
  local rs n w c size url up=${PID[upstream]} d=$GROWTH_DURATION
  rs=$(<"$RUN/tokens/rs256-good.jwt")
  url="http://127.0.0.1:$P_CG$DOC_PATH"

  log "growth: distinct live tokens"
  for n in $TOKEN_LEVELS; do
    (( n <= POOL_RS256 )) || { log "  skipping $n tokens: pool holds $POOL_RS256"; continue; }
    # Warm up long enough to send every token at least once (about 4,000 req/s when most miss).
    w=$(( WARMUP + n / 4000 )); (( w > 30 )) && w=30
    WARMUP=$w measure "tokens-$n" 64 "$d" "${PID[cg]}" "$up" "$A_CG" "\"row\":\"cg-tokens\",\"tokens\":$n" \
      -- -s "$BENCH/lua/pool.lua" "$url" -- "$POOLS/rs256.txt" cycle "$n" 0
  done

  log "growth: body size"
  start_cg cg-body "$P_CG_BODY" "$A_CG_BODY" "http://127.0.0.1:$P_BODY_UP" 0
  for size in $BODY_SIZES; do
    local path=/dbs/benchdb/colls/orders/docs/doc-$size
    measure "body-nginx-$size" "${BODY_CONNS:-16}" "$d" "${PID[bodies-proxy]}" "${PID[bodies-upstream]}" "" \
      "\"row\":\"nginx-body\",\"bytes\":$size" -- -H "Authorization: Bearer $rs" "http://127.0.0.1:$P_BODY_NGX$path"
    measure "body-cg-$size" "${BODY_CONNS:-16}" "$d" "${PID[cg-body]}" "${PID[bodies-upstream]}" "$A_CG_BODY" \
      "\"row\":\"cg-body\",\"bytes\":$size" -- -H "Authorization: Bearer $rs" "http://127.0.0.1:$P_CG_BODY$path"
  done
  stop cg-body

  log "growth: concurrent connections"
  for c in $CONN_LEVELS; do
    measure "conns-nginx-$c" "$c" "$d" "${PID[nginx]}" "$up" "" "\"row\":\"nginx-conns\"" \
      -- -H "Authorization: Bearer $rs" "http://127.0.0.1:18082$DOC_PATH"
    measure "conns-cg-$c" "$c" "$d" "${PID[cg]}" "$up" "$A_CG" "\"row\":\"cg-conns\"" \
      -- -H "Authorization: Bearer $rs" "$url"
  done

  log "growth: memory per idle keep-alive connection (fresh processes)"
  stop cg; stop nginx
  start nginx "$PROXY_CPUS" nginx -p "$RUN/" -e "$RUN/proxy-nginx-error.log" -c "$HARNESS/conf/proxy-nginx.conf"
  wait_port 18082 nginx
  start_cg cg "$P_CG" "$A_CG" http://127.0.0.1:18081 0
  start_cg cg-tls "$P_CG_TLS" "$A_CG_TLS" http://127.0.0.1:18081 1
  python3 "$BENCH/lib/idle_conns.py" "http://127.0.0.1:18082$DOC_PATH" "$RUN/tokens/rs256-good.jwt" "${PID[nginx]}" "$IDLE_LEVELS" >"$RESULTS/$PHASE/idle-nginx.csv"
  python3 "$BENCH/lib/idle_conns.py" "$url" "$RUN/tokens/rs256-good.jwt" "${PID[cg]}" "$IDLE_LEVELS" >"$RESULTS/$PHASE/idle-cg.csv"
  python3 "$BENCH/lib/idle_conns.py" "https://127.0.0.1:$P_CG_TLS$DOC_PATH" "$RUN/tokens/rs256-good.jwt" "${PID[cg-tls]}" "$IDLE_LEVELS" --tls >"$RESULTS/$PHASE/idle-cg-tls.csv"
  stop_all
}

# The harness's /_bench/echo-auth is not a Cosmos operation, so cosmogate's default deny refuses
# it (403) and the harness cannot see what reached its upstream. Instead: cosmogate in front of
# an upstream that logs the kind and first 16 characters of every Authorization it receives.
do_check() {
  PHASE=check
  mkdir -p "$RESULTS/$PHASE"
  helpers_up
  log "harness accept/reject checks against cosmogate"
  (cd "$HARNESS" && env PATH="$TOOLS/bin:$PATH" SKIP_SETUP=1 RESULTS="$RESULTS/$PHASE/harness" \
     PRODUCT_CMD="$BENCH/peers.sh product" PEERS="direct nginx" ./run.sh check) || true
  start_bodies
  start_cg cg-proof "$P_CG_PROOF" "$A_CG_PROOF" "http://127.0.0.1:$P_PROOF_UP" 0
  : >"$RUN/auth-seen.log.start"
  local before i code t path=/dbs/benchdb/colls/orders/docs/doc-1024 out=$RESULTS/$PHASE/credential-swap.txt
  before=$(wc -l <"$RUN/auth-seen.log" 2>/dev/null || echo 0)
  declare -A got=()
  for t in rs256-good es256-good rs256-nogroup rs256-wrongtenant rs256-badsig rs256-expired; do
    for i in 1 2 3 4 5; do
      code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(<"$RUN/tokens/$t.jwt")" "http://127.0.0.1:$P_CG_PROOF$path")
      got[$t]+="$code "
    done
  done
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(<"$RUN/tokens/rs256-good.jwt")" "http://127.0.0.1:$P_CG_PROOF/_bench/echo-auth")
  sleep 1
  local seen
  seen=$(tail -n +"$((before + 1))" "$RUN/auth-seen.log")
  # The last 16 characters of every token the token endpoint stand-in issued, and of the app
  # tokens sent.
  python3 -c 'import json,sys; [print(json.loads(l)["token"][-16:]) for l in open(sys.argv[1]) if json.loads(l).get("token")]' \
    "$RUN/token-endpoint.jsonl" | sort -u >"$RUN/mi-suffixes.txt"
  for t in "${!got[@]}"; do tail -c 16 "$RUN/tokens/$t.jwt"; echo; done | sort -u >"$RUN/app-suffixes.txt"
  local mi_n app_n other_n total
  total=$(grep -c . <<<"$seen" || true)
  mi_n=$(sed -n 's/.* aad:\(.*\)$/\1/p' <<<"$seen" | grep -cxFf "$RUN/mi-suffixes.txt" || true)
  app_n=$(sed -n 's/.* [a-z]*:\(.*\)$/\1/p' <<<"$seen" | grep -cxFf "$RUN/app-suffixes.txt" || true)
  other_n=$((total - mi_n))
  {
    echo "== credential swap through cosmogate ($(date -Is))"
    echo "upstream: nginx on 127.0.0.1:$P_PROOF_UP logging, per request, the form of its Authorization"
    echo "header (aad = type=aad&ver=1.0&sig=..., bearer) and the token's last 16 characters"
    for t in "${!got[@]}"; do echo "app token $t: cosmogate answered ${got[$t]}"; done | sort
    echo "/_bench/echo-auth (not a Cosmos operation): cosmogate answered $code (default deny)"
    echo "requests the upstream received: $total (the 200s above)"
    echo "  carrying a managed-identity token the token endpoint stand-in issued (type=aad): $mi_n"
    echo "  carrying any of the app tokens sent: $app_n"
    echo "  carrying anything else: $other_n"
    echo "audit records written by cosmogate: $(wc -l <"$RUN/cg/cg-proof-audit.jsonl")"
  } | tee "$out"
  stop_all
}

do_profile() {
  PHASE=profile
  local out=$RESULTS/$PHASE secs=${PROFILE_SECS:-20} rs url cgpid ngxpid
  mkdir -p "$out"
  command -v valgrind >/dev/null || die "valgrind is needed (apt-get install valgrind)"
  local perf_out
  perf_out=$(perf stat -e instructions true 2>&1 || true)
  if [[ $perf_out == *"not supported"* || -z $perf_out ]]; then
    echo "perf stat -e instructions: not supported on this machine; callgrind (user-space instructions) instead" >"$out/README.txt"
  fi
  helpers_up
  start_harness_upstreams
  rs=$(<"$RUN/tokens/rs256-good.jwt")
  write_config "$RUN/cg/cg-prof.toml" "127.0.0.1:$P_CG" "$A_CG" http://127.0.0.1:18081 0 "$RUN/cg/cg-prof-audit.jsonl"
  start cg-prof "$PROXY_CPUS" valgrind --tool=callgrind --instr-atstart=no \
    --callgrind-out-file="$RUN/callgrind.cg.%p" "$CG" serve --config "$RUN/cg/cg-prof.toml"
  wait_port "$P_CG" cg-prof 120
  url="http://127.0.0.1:$P_CG$DOC_PATH"
  cgpid=${PID[cg-prof]}
  local case
  for case in repeated-RS256 fresh-RS256 fresh-ES256; do
    # shellcheck disable=SC2046
    $(pin "$LOADGEN_CPUS") wrk -t1 -c4 -d3s -H "Authorization: Bearer $rs" "$url" >/dev/null 2>&1 || true
    callgrind_control -z "$cgpid" >/dev/null; callgrind_control -i on "$cgpid" >/dev/null
    case $case in
      repeated-RS256) wrk -t1 -c4 -d"${secs}s" -H "Authorization: Bearer $rs" "$url" >"$out/$case.wrk.txt" 2>&1 ;;
      fresh-RS256) wrk -t1 -c4 -d"${secs}s" -s "$BENCH/lua/pool.lua" "$url" -- "$POOLS/rs256.txt" once 0 "$((POOL_RS256 - 20000))" >"$out/$case.wrk.txt" 2>&1 ;;
      fresh-ES256) wrk -t1 -c4 -d"${secs}s" -s "$BENCH/lua/pool.lua" "$url" -- "$POOLS/es256.txt" once 0 "$((POOL_ES256 - 20000))" >"$out/$case.wrk.txt" 2>&1 ;;
    esac
    callgrind_control -i off "$cgpid" >/dev/null
    callgrind_control -d "$case" "$cgpid" >/dev/null
  done
  stop cg-prof
  stop nginx
  start nginx-prof "$PROXY_CPUS" valgrind --tool=callgrind --instr-atstart=no \
    --callgrind-out-file="$RUN/callgrind.nginx.%p" nginx -g 'master_process off;' -p "$RUN/" -e "$RUN/proxy-nginx-error.log" -c "$HARNESS/conf/proxy-nginx.conf"
  wait_port 18082 nginx-prof 120
  ngxpid=${PID[nginx-prof]}
  wrk -t1 -c4 -d3s -H "Authorization: Bearer $rs" "http://127.0.0.1:18082$DOC_PATH" >/dev/null 2>&1 || true
  callgrind_control -z "$ngxpid" >/dev/null; callgrind_control -i on "$ngxpid" >/dev/null
  wrk -t1 -c4 -d"${secs}s" -H "Authorization: Bearer $rs" "http://127.0.0.1:18082$DOC_PATH" >"$out/nginx.wrk.txt" 2>&1
  callgrind_control -i off "$ngxpid" >/dev/null; callgrind_control -d nginx "$ngxpid" >/dev/null
  stop nginx-prof
  stop_all
  local f name req ir
  echo "case requests Ir Ir_per_request" >"$out/summary.txt"
  for f in "$RUN"/callgrind.cg."$cgpid".* "$RUN"/callgrind.nginx."$ngxpid".*; do
    [[ -f $f ]] || continue
    name=$(sed -n 's/^desc: Trigger: dump //p' "$f" | head -1)
    [[ -n $name ]] || continue
    req=$(awk '/requests in/ {print $1}' "$out/$name.wrk.txt")
    ir=$(awk '/^totals:/ {print $2}' "$f")
    echo "$name $req $ir $(( ir / (req > 0 ? req : 1) ))" >>"$out/summary.txt"
    callgrind_annotate --inclusive=yes "$f" 2>/dev/null >"$RUN/annotate.txt" || true
    head -120 "$RUN/annotate.txt" | cut -c1-250 >"$out/$name.inclusive.txt"
    callgrind_annotate "$f" 2>/dev/null >"$RUN/annotate.txt" || true
    head -80 "$RUN/annotate.txt" | cut -c1-250 >"$out/$name.self.txt"
  done
  cat "$out/summary.txt"
  ls "$out"
}

# perf on the native binary (no valgrind): software counters (task-clock, page faults, context
# switches) per case, and a cpu-clock call-graph profile of each case (PERF_SECS each, 5). Each
# case's two runs use disjoint halves of a token pool, so every fresh token is new to the
# process. PERF_CALLGRAPH=dwarf (default fp) gives callers through Rust code without frame
# pointers; PERF_FREQ (2000) the sampling rate. Hardware counters are not
# available in this VM, so the profile samples time, kernel included.
do_perf() {
  PHASE=perf
  local out=$RESULTS/$PHASE secs=${PERF_SECS:-5} rs url cgpid case load
  mkdir -p "$out"
  command -v perf >/dev/null || die "perf is needed (apt-get install linux-perf)"
  helpers_up
  start_harness_upstreams
  rs=$(<"$RUN/tokens/rs256-good.jwt")
  write_config "$RUN/cg/cg-perf.toml" "127.0.0.1:$P_CG" "$A_CG" http://127.0.0.1:18081 0 "$RUN/cg/cg-perf-audit.jsonl"
  start cg-perf "$PROXY_CPUS" "$CG" serve --config "$RUN/cg/cg-perf.toml"
  wait_port "$P_CG" cg-perf
  url="http://127.0.0.1:$P_CG$DOC_PATH"
  cgpid=${PID[cg-perf]}
  echo "case requests task_clock_ms page_faults context_switches us_per_request faults_per_request" >"$out/summary.txt"
  for case in repeated-RS256 fresh-RS256 fresh-ES256; do
    # shellcheck disable=SC2046
    $(pin "$LOADGEN_CPUS") wrk -t1 -c64 -d3s -H "Authorization: Bearer $rs" "$url" >/dev/null 2>&1 || true
    case $case in
      repeated-RS256) load=(-H "Authorization: Bearer $rs" "$url") ;;
      fresh-RS256) load=(-s "$BENCH/lua/pool.lua" "$url" -- "$POOLS/rs256.txt" once 0 0) ;;
      fresh-ES256) load=(-s "$BENCH/lua/pool.lua" "$url" -- "$POOLS/es256.txt" once 0 0) ;;
    esac
    perf stat -x, -e task-clock,page-faults,context-switches -p "$cgpid" -o "$out/$case.stat.csv" -- sleep "$secs" &
    local statpid=$!
    # shellcheck disable=SC2046
    $(pin "$LOADGEN_CPUS") wrk -t1 -c64 -d"${secs}s" "${load[@]}" >"$out/$case.wrk.txt" 2>&1 || true
    wait "$statpid" || true
    local req tc pf cs
    req=$(awk '/requests in/ {print $1}' "$out/$case.wrk.txt")
    tc=$(awk -F, '$3 == "task-clock" {print $1}' "$out/$case.stat.csv")
    pf=$(awk -F, '$3 == "page-faults" {print $1}' "$out/$case.stat.csv")
    cs=$(awk -F, '$3 == "context-switches" {print $1}' "$out/$case.stat.csv")
    awk -v n="$case" -v r="$req" -v t="$tc" -v p="$pf" -v c="$cs" \
      'BEGIN {printf "%s %d %.0f %d %d %.1f %.3f\n", n, r, t, p, c, t * 1000 / (r > 0 ? r : 1), p / (r > 0 ? r : 1)}' >>"$out/summary.txt"
    case $case in
      repeated-RS256) load=(-H "Authorization: Bearer $rs" "$url") ;;
      fresh-RS256) load=(-s "$BENCH/lua/pool.lua" "$url" -- "$POOLS/rs256.txt" once 0 "$((POOL_RS256 / 2))") ;;
      fresh-ES256) load=(-s "$BENCH/lua/pool.lua" "$url" -- "$POOLS/es256.txt" once 0 "$((POOL_ES256 / 2))") ;;
    esac
    perf record -e cpu-clock -F "${PERF_FREQ:-2000}" --call-graph "${PERF_CALLGRAPH:-fp}" -p "$cgpid" -o "$RUN/perf.$case.data" -- sleep "$secs" >/dev/null 2>&1 &
    local recpid=$!
    # shellcheck disable=SC2046
    $(pin "$LOADGEN_CPUS") wrk -t1 -c64 -d"${secs}s" "${load[@]}" >/dev/null 2>&1 || true
    wait "$recpid" || true
    perf report -i "$RUN/perf.$case.data" --no-children --sort symbol --stdio 2>/dev/null \
      | grep -v '^$' | grep -E '^ +[0-9]' | head -60 | cut -c1-200 >"$out/$case.self.txt" || true
    perf report -i "$RUN/perf.$case.data" --children --sort symbol --stdio -g none 2>/dev/null \
      | grep -E '^ +[0-9]' | head -80 | cut -c1-200 >"$out/$case.inclusive.txt" || true
  done
  stop cg-perf
  stop_all
  cat "$out/summary.txt"
}

# The proxy core as a whole (perf record -C PROXY_CPUS, cpu-clock with kernel call graphs), for
# cosmogate (repeated RS256 token) and nginx under the same closed-loop load (wrk, 64
# connections), CORES_SECS each (5); with CORES_RATE=N, under the same fixed rate instead (oha,
# N req/s), so both proxies leave the other core equally busy (results in cores-rateN/). A sample is 1/PERF_FREQ s of the core, so samples x (1e6/PERF_FREQ) / requests is the
# core's time per request in that symbol. cores.txt: system calls per request (perf stat on the
# same core, CORE_SYSCALLS), then by command and object, then the kernel
# functions of each proxy, then who calls the top kernel function.
per_request() {  # per_request REQUESTS FREQ: perf report -n lines, led by the time per request
  awk -v n="$1" -v f="$2" '{printf "%8.2f us/req  %s\n", $2 * 1e6 / f / n, $0}'
}

# The system calls a proxy makes per request, counted on its core while it is sampled.
CORE_SYSCALLS=$(printf 'syscalls:sys_enter_%s,' read write readv writev recvfrom sendto recvmsg sendmsg \
  epoll_wait epoll_pwait epoll_ctl futex sched_yield accept4 getrandom clock_gettime)
CORE_SYSCALLS=${CORE_SYSCALLS%,}
cores_load() {  # cores_load SECS URL TOKEN OUT_PREFIX: the cores phase's load; prints the requests served
  local secs=$1 url=$2 rs=$3 prefix=$4
  if [[ -n ${CORES_RATE:-} ]]; then
    # shellcheck disable=SC2046
    $(pin "$LOADGEN_CPUS") "$TOOLS/bin/oha" -z "${secs}s" -c 64 -q "$CORES_RATE" --latency-correction \
      --no-tui --output-format json -H "Authorization: Bearer $rs" "$url" >"$prefix.oha.json" 2>&1 || true
    python3 -c 'import json, sys; print(sum(json.load(open(sys.argv[1]))["statusCodeDistribution"].values()))' "$prefix.oha.json"
  else
    # shellcheck disable=SC2046
    $(pin "$LOADGEN_CPUS") wrk -t1 -c64 -d"${secs}s" -H "Authorization: Bearer $rs" "$url" >"$prefix.wrk.txt" 2>&1 || true
    awk '/requests in/ {print $1}' "$prefix.wrk.txt"
  fi
}

do_cores() {
  PHASE=cores${CORES_RATE:+-rate$CORES_RATE}
  local out=$RESULTS/$PHASE secs=${CORES_SECS:-5} freq=${PERF_FREQ:-2000} rs target url pid n nsys rec sys
  mkdir -p "$out"
  command -v perf >/dev/null || die "perf is needed (apt-get install linux-perf)"
  [[ -n $PROXY_CPUS ]] || die "cores needs PROXY_CPUS"
  helpers_up
  start_harness_upstreams
  start_cg cg-cores "$P_CG" "$A_CG" http://127.0.0.1:18081 0
  rs=$(<"$RUN/tokens/rs256-good.jwt")
  : >"$out/cores.txt"
  for target in cosmogate nginx; do
    case $target in
      cosmogate) url="http://127.0.0.1:$P_CG$DOC_PATH"; pid=${PID[cg-cores]} ;;
      nginx) url="http://127.0.0.1:18082$DOC_PATH"; pid=${PID[nginx]} ;;
    esac
    # shellcheck disable=SC2046
    $(pin "$LOADGEN_CPUS") wrk -t1 -c64 -d2s -H "Authorization: Bearer $rs" "$url" >/dev/null 2>&1 || true
    perf record -g -e cpu-clock -F "$freq" -C "$PROXY_CPUS" -o "$RUN/cores.$target.data" -- sleep "$secs" >/dev/null 2>&1 &
    rec=$!
    n=$(cores_load "$secs" "$url" "$rs" "$out/$target")
    wait "$rec" || true
    # The system calls are counted in a second window of the same load: tracepoints on every
    # system call would add kernel time to the samples above.
    perf stat -x, -e "$CORE_SYSCALLS" -C "$PROXY_CPUS" -o "$RUN/cores.$target.syscalls.csv" -- sleep "$secs" >/dev/null 2>&1 &
    sys=$!
    nsys=$(cores_load "$secs" "$url" "$rs" "$out/$target.syscalls")
    wait "$sys" || true
    {
      echo "== $target: $n requests in ${secs} s${CORES_RATE:+ at $CORES_RATE req/s (oha)}, core $PROXY_CPUS sampled at $freq Hz"
      echo "-- system calls per request on the proxy core (every process on it; a second window, $nsys requests)"
      awk -F, -v n="$nsys" '$3 ~ /^syscalls:/ && $1 ~ /^[0-9.]+$/ && $1 > 0 {sub(/syscalls:sys_enter_/, "", $3); printf "%8.2f  %s\n", $1 / n, $3}' \
        "$RUN/cores.$target.syscalls.csv" | sort -rn
      echo "-- by command and object"
      perf report -n -i "$RUN/cores.$target.data" --stdio --no-children --sort comm,dso 2>/dev/null \
        | grep -E '^ +[0-9]' | head -8 | per_request "$n" "$freq" || true
      echo "-- kernel functions, in $target's own threads"
      # cosmogate's work runs on tokio's workers, or, on the current-thread scheduler (one
      # usable core), on the main thread, named after the binary (15 characters at most).
      local comm; comm=$([[ $target == nginx ]] && echo nginx || echo "tokio-rt-worker,$(basename "$CG" | cut -c1-15)")
      perf report -n -i "$RUN/cores.$target.data" --stdio --no-children --comm "$comm" \
        --dso '[kernel.kallsyms]' --sort sym 2>/dev/null | grep -E '^ +[0-9]' | head -12 | per_request "$n" "$freq" || true
      echo "-- callers of _raw_spin_unlock_irqrestore (time spent with interrupts off, mostly waking a task on the other core)"
      perf report -i "$RUN/cores.$target.data" --stdio --no-children --sort sym \
        -S _raw_spin_unlock_irqrestore -G 2>/dev/null | grep -E -- '%' | grep -v '^#' | head -12 || true
      echo
    } >>"$out/cores.txt"
  done
  stop cg-cores
  stop_all
  cat "$out/cores.txt"
}

do_report() { "$VENV/bin/python" "$BENCH/lib/report.py" "$RESULTS" "$HARNESS"; }
do_plot() { "$VENV/bin/python" "$BENCH/plot.py" "$RESULTS" "$ROOT/docs/img" "$BENCH/micro/data"; }

# ----------------------------------------------------------------------------- main
case $MODE in
  product) bench_env; do_product ;;
  setup) bench_env; do_setup ;;
  check) bench_env; mkdir -p "$RUN"; do_check ;;
  peers) bench_env; mkdir -p "$RUN"; do_peers ;;
  latency) bench_env; mkdir -p "$RUN"; do_latency ;;
  extra) bench_env; mkdir -p "$RUN"; do_extra ;;
  growth) bench_env; mkdir -p "$RUN"; do_growth ;;
  profile) bench_env; mkdir -p "$RUN"; do_profile ;;
  perf) bench_env; mkdir -p "$RUN"; do_perf ;;
  cores) bench_env; mkdir -p "$RUN"; do_cores ;;
  report) do_report ;;
  plot) do_plot ;;
  all)
    bench_env; do_setup
    do_check; do_peers; do_latency; do_extra; do_growth
    do_report; do_plot
    log "results in $RESULTS" ;;
  *) die "unknown mode $MODE (see the top of $0)" ;;
esac
