#!/usr/bin/env bash
# federation.sh - issue 11's federation targets, ruma_tx and Synapse side by side (bench/federation.py).
#
#   bench/federation.sh                         every scenario: inbound_send remote_join latency
#   SMOKE=1 bench/federation.sh                 small sizes, a few minutes
#   SCENARIOS="inbound_send latency" ROUNDS=3 bench/federation.sh
#   PROFILE=1 [PY_SPY=/tmp/pyspy/bin/py-spy] bench/federation.sh   py-spy on the ruma_tx target
#
# Starts, from scratch on every run, four federating servers on loopback and stops them at the
# end (trap on exit): two ruma_tx daemons (ORIGIN and TARGET, twistd from scratch folders
# under $BENCH_HOME/federation, certificates from the peer script's CA) and two Synapse peers
# (SYN_A, SYN_B: /work/shared/fed/synapse-peer.sh, state under $BENCH_HOME/federation/fed).
# All four use databases of their own, made afresh, in the kit's private PostgreSQL cluster
# (synapse.sh createdb; the cluster is stopped at the end if this script started it), so both
# implementations run on the same PostgreSQL. Everything listens on 127.0.0.1 only.
#
# Environment (defaults in brackets):
#   BENCH_HOME [$HOME/.cache/ruma-bench]  BENCH_KIT [/work/shared/bench]
#   FED_PEER [/work/shared/fed/synapse-peer.sh]  FED_BASE_PORT [18060] (8 ports from there)
#   SMOKE [0]  ROUNDS [1]  SCENARIOS [all]  OUT [$BENCH_HOME/results/federation-<full|smoke>-<date>-<time>.json]
#   RUMA_VENV [<repo>/.venv]  its twistd runs ruma_tx, its python runs federation.py
#   HOLD=1  only start the four servers (their description in $BENCH_HOME/federation/servers.json)
#           and wait until interrupted: to try things or profile by hand
#   Sizes: SEND_PDUS SEND_PER_TXN JOIN_MEMBERS JOIN_STATE LAT_N LAT_INTERVAL_MS SEED_CONC
#          (see federation.py)
set -euo pipefail
# One function, read whole before it runs: editing this file during a run changes nothing.
main() {
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
die() { echo "federation.sh: error: $*" >&2; exit 1; }
note() { echo "federation.sh: $*" >&2; }

KIT=${BENCH_KIT:-/work/shared/bench}
PEER=${FED_PEER:-$(cd "$REPO/.." && pwd)/shared/fed/synapse-peer.sh}
[ -x "$KIT/synapse.sh" ] && [ -f "$KIT/mxbench.py" ] || die "the shared benchmark kit is missing at $KIT"
[ -f "$PEER" ] || PEER=/work/shared/fed/synapse-peer.sh
[ -f "$PEER" ] || die "no Synapse peer script (set FED_PEER)"
export BENCH_KIT=$KIT
export BENCH_HOME=${BENCH_HOME:-$HOME/.cache/ruma-bench}
SMOKE=${SMOKE:-0}
ROUNDS=${ROUNDS:-1}
BASE=${FED_BASE_PORT:-18060}
RUMA_VENV=${RUMA_VENV:-$REPO/.venv}
tag=$( [ "$SMOKE" = 1 ] && echo smoke || echo full )
OUT=${OUT:-$BENCH_HOME/results/federation-$tag-$(date +%Y%m%d-%H%M%S).json}
LOG=${OUT%.json}.log
FB=$BENCH_HOME/federation
mkdir -p "$(dirname "$OUT")" "$FB"
[ -e "$OUT" ] && die "$OUT exists; pick another OUT"
[ -x "$RUMA_VENV/bin/twistd" ] || die "no $RUMA_VENV/bin/twistd: install ruma_tx there first"
"$RUMA_VENV/bin/python" -c 'import aiohttp, ruma_tx' || die "$RUMA_VENV lacks aiohttp or ruma_tx"
for port in $(seq "$BASE" $((BASE + 7))); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && die "127.0.0.1:$port is in use (set FED_BASE_PORT)"
done
export FED_HOME=$FB/fed FED_LOGLEVEL=WARNING

# ---- cleanup: only what this script started, by PID
RUMA_PIDS=() PEERS=() OWN_PG=0 DRIVER_PID=
cleanup() {
  local pid i port
  if [ -n "$DRIVER_PID" ] && kill -0 "$DRIVER_PID" 2>/dev/null; then
    kill -TERM "$DRIVER_PID"; wait "$DRIVER_PID" 2>/dev/null || true
  fi
  for pid in "${RUMA_PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null || continue
    kill -TERM "$pid"
    for i in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    note "stopped ruma_tx (PID $pid)"
  done
  for port in "${PEERS[@]}"; do FED_PORT=$port CLIENT_PORT=$((port - 1)) "$PEER" stop || true; done
  if [ "$OWN_PG" = 1 ]; then
    if [ -n "$(sed -n 's/^RUNNING_POSTGRES_PID=//p' <<<"$("$KIT/synapse.sh" status 2>/dev/null)")" ]; then
      note "leaving PostgreSQL running: the kit's Synapse uses it now"
    else
      "$KIT/synapse.sh" stop postgres || true
    fi
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- PostgreSQL: a fresh database per server
status=$("$KIT/synapse.sh" status 2>/dev/null || true)
[ -n "$(sed -n 's/^PG_PID=//p' <<<"$status")" ] || OWN_PG=1
fresh_db() { # $1 = name; prints the DSN
  local out pgdata
  out=$("$KIT/synapse.sh" createdb "$1") || die "synapse.sh createdb $1 failed"
  pgdata=$(sed -n 's/^PG_DATA=//p' <<<"$("$KIT/synapse.sh" status)")
  psql -h "$pgdata" -p "${SYNAPSE_PG_PORT:-5434}" -U postgres -d postgres -qtA -v ON_ERROR_STOP=1 \
    -c "DROP DATABASE IF EXISTS $1" >/dev/null || die "could not drop database $1"
  "$KIT/synapse.sh" createdb "$1" | sed -n 's/^DSN=//p'
}
origin_dsn=$(fresh_db ruma_fed_origin)
target_dsn=$(fresh_db ruma_fed_target)
PG_PID=$(sed -n 's/^PG_PID=//p' <<<"$("$KIT/synapse.sh" status)")
[ -n "$PG_PID" ] || die "PostgreSQL did not start"

# ---- two Synapse peers on PostgreSQL
start_peer() { # $1 = label, $2 = client port (federation on $2 + 1); prints the servers.json entry
  local label=$1 client=$2 fed=$(( $2 + 1 )) db=syn_fed_$1 dsn extra out
  dsn=$(fresh_db "$db")
  extra=$FB/synapse-$label.yaml
  cat > "$extra" <<EOF
# written by bench/federation.sh: this peer on the bench's PostgreSQL cluster
database: {name: psycopg2, args: {user: $db, password: $db, database: $db, host: 127.0.0.1,
           port: ${SYNAPSE_PG_PORT:-5434}, cp_min: 5, cp_max: 10}}
EOF
  FED_PORT=$fed CLIENT_PORT=$client "$PEER" reset >/dev/null 2>&1 || true
  PEERS+=("$fed")
  out=$(FED_PORT=$fed CLIENT_PORT=$client FED_EXTRA_YAML=$extra "$PEER" start) || die "Synapse peer $label did not start"
  SYN_JSON+=("\"$label\": {\"kind\": \"synapse\", \"server_name\": \"localhost:$fed\", \"client_url\": \"http://127.0.0.1:$client\", \"fed_url\": \"https://127.0.0.1:$fed\", \"pid\": $(sed -n 's/^PID=//p' <<<"$out")}")
  note "Synapse $label: localhost:$fed (PID $(sed -n 's/^PID=//p' <<<"$out"), $(sed -n 's/^STARTUP_MS=//p' <<<"$out") ms)"
}
SYN_JSON=()
start_peer syn_a $((BASE + 4))
start_peer syn_b $((BASE + 6))
CA=$FED_HOME/ca/ca.crt

# ---- two ruma_tx daemons from scratch folders
RUMA_JSON=()
start_ruma() { # $1 = label, $2 = client port (federation on $2 + 1), $3 = DSN
  local label=$1 client=$2 fed=$(( $2 + 1 )) dir=$FB/$1 pid i
  rm -rf "$dir"
  mkdir -p "$dir"
  "$PEER" issue-cert localhost "$dir/tls" >/dev/null || die "issue-cert failed"
  cat > "$dir/ruma.toml" <<EOF
# written by bench/federation.sh on every run
server_name = "localhost:$fed"
data_dir = "var"
public_baseurl = "http://127.0.0.1:$client/"

[[listeners]]
endpoint = "ssl:$fed:interface=127.0.0.1:privateKey=$dir/tls/tls.key:certKey=$dir/tls/tls.crt"
resources = ["federation"]

[[listeners]]
endpoint = "tcp:$client:interface=127.0.0.1"
resources = ["client"]

[database]
dsn = "$3"

[passwords]
bcrypt_rounds = 4

[rate_limits]
enabled = false

[logging]
level = "warn"
requests = "off"

[federation]
enabled = true
ca_file = "$CA"
ip_range_allowlist = ["127.0.0.0/8"]
EOF
  ( cd "$dir" && exec "$RUMA_VENV/bin/twistd" -n --pidfile= ruma --config "$dir/ruma.toml" ) \
    >>"$dir/ruma.log" 2>&1 </dev/null &
  pid=$!
  RUMA_PIDS+=("$pid")
  for i in $(seq 1 600); do
    curl -sf -o /dev/null "http://127.0.0.1:$client/_matrix/client/versions" \
      && curl -sf -o /dev/null --cacert "$CA" "https://localhost:$fed/_matrix/federation/v1/version" && break
    kill -0 "$pid" 2>/dev/null || { tail -20 "$dir/ruma.log" >&2; die "ruma_tx $label exited"; }
    sleep 0.1
  done
  RUMA_JSON+=("\"$label\": {\"kind\": \"ruma\", \"server_name\": \"localhost:$fed\", \"client_url\": \"http://127.0.0.1:$client\", \"fed_url\": \"https://127.0.0.1:$fed\", \"pid\": $pid, \"signing_key_path\": \"$dir/var/signing.key\"}")
  note "ruma_tx $label: localhost:$fed (PID $pid), log $dir/ruma.log"
}
start_ruma origin "$BASE" "$origin_dsn"
start_ruma target $((BASE + 2)) "$target_dsn"
servers=$FB/servers.json
( IFS=,; echo "{${RUMA_JSON[*]},${SYN_JSON[*]}}" ) > "$servers"
if [ "${HOLD:-0}" = 1 ]; then   # for debugging and profiling by hand
  note "HOLD=1: servers in $servers (PostgreSQL PID $PG_PID, CA $CA); stop with Ctrl-C or SIGTERM"
  while :; do sleep 5; done
fi

# ---- run
if git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1; then   # read-only: which code is measured
  RUMA_CODE="$(git -C "$REPO" rev-parse --short HEAD) $(git -C "$REPO" log -1 --format=%s | cut -c1-70)"
  dirty=$(git -C "$REPO" status --porcelain -- ruma_tx | wc -l)
  [ "$dirty" -gt 0 ] && RUMA_CODE="$RUMA_CODE (+$dirty uncommitted files under ruma_tx/)"
  export RUMA_CODE
fi
args=(--servers "$servers" --ca "$CA" --pg-pid "$PG_PID" --rounds "$ROUNDS" --out "$OUT")
[ "$SMOKE" = 1 ] && args+=(--smoke)
# shellcheck disable=SC2206
[ -n "${SCENARIOS:-}" ] && args+=(--scenarios $SCENARIOS)
if [ "${PROFILE:-0}" = 1 ]; then
  PY_SPY=${PY_SPY:-$(command -v py-spy || echo /tmp/pyspy/bin/py-spy)}
  [ -x "$PY_SPY" ] || die "PROFILE=1 needs py-spy (python3 -m venv /tmp/pyspy && /tmp/pyspy/bin/pip install py-spy)"
  args+=(--profile-dir "${OUT%.json}-profiles" --py-spy "$PY_SPY")
fi
note "results: $OUT (log: $LOG)"
# in the background, so that a signal reaches the trap (and the driver is stopped) at once
"$RUMA_VENV/bin/python" "$HERE/federation.py" "${args[@]}" 2> >(tee -a "$LOG" >&2) &
DRIVER_PID=$!
wait "$DRIVER_PID"
}
main "$@"
