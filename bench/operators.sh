#!/usr/bin/env bash
# operators.sh - the operator issue (admin API, metrics, Synapse import): ruma_tx and Synapse
# side by side (bench/operators.py; see bench/README.md).
#
#   BENCH_HOME=/tmp/opbench SYNAPSE_PORT=18700 SYNAPSE_PG_PORT=5700 bench/operators.sh
#   ROUNDS=3 SCENARIOS="users_list rooms_list metrics" bench/operators.sh
#
# Needs the shared kit at BENCH_KIT (default /work/shared/bench). Every run starts from scratch:
# `synapse.sh reset postgres` (Synapse's data AND its PostgreSQL cluster under BENCH_HOME), then
# `BCRYPT_ROUNDS=4 synapse.sh start postgres`; ruma_tx from <repo>/.venv on 127.0.0.1:$RUMA_PORT
# (client) and $RUMA_METRICS_PORT ("metrics" listener), database ops_ruma in the same cluster.
# The import goes into database ops_import (config $BENCH_HOME/operators/import/ruma.toml) after
# Synapse is stopped. Stops all it started (trap on exit). Use a BENCH_HOME of its own: the reset
# wipes that BENCH_HOME's Synapse data.
#
# Environment: BENCH_HOME [$HOME/.cache/ruma-bench]  RUMA_PORT [18710]  RUMA_METRICS_PORT [18711]
#   ROUNDS [1]  SCENARIOS [users_list rooms_list metrics import]  OUT [$BENCH_HOME/results/operators-<date>.json]
#   sizes: OPS_USERS [2000] OPS_ROOMS [500] OPS_SEARCHES [20] OPS_SENDERS [8] OPS_SEND_S [15]
#   OPS_IMPORT_MSGS [5000] OPS_PASSES [5]
set -euo pipefail
main() {
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
die() { echo "operators.sh: error: $*" >&2; exit 1; }
note() { echo "operators.sh: $*" >&2; }

KIT=${BENCH_KIT:-/work/shared/bench}
[ -f "$KIT/mxbench.py" ] && [ -x "$KIT/synapse.sh" ] || die "the shared benchmark kit is missing at $KIT"
export BENCH_HOME=${BENCH_HOME:-$HOME/.cache/ruma-bench}
export BCRYPT_ROUNDS=4
RUMA_PORT=${RUMA_PORT:-18710}
RUMA_METRICS_PORT=${RUMA_METRICS_PORT:-18711}
PY=$REPO/.venv/bin/python
[ -x "$REPO/.venv/bin/twistd" ] && [ -x "$REPO/.venv/bin/ruma-admin" ] || die "install ruma_tx into $REPO/.venv first"
OUT=${OUT:-$BENCH_HOME/results/operators-$(date +%Y%m%d-%H%M%S).json}
ODIR=$BENCH_HOME/operators
mkdir -p "$(dirname "$OUT")" "$ODIR"

OWN_RUMA_PID= SYN_STARTED=0
cleanup() {
  if [ -n "$OWN_RUMA_PID" ] && kill -0 "$OWN_RUMA_PID" 2>/dev/null; then
    kill -TERM "$OWN_RUMA_PID"
    for _ in $(seq 1 300); do kill -0 "$OWN_RUMA_PID" 2>/dev/null || break; sleep 0.1; done
    note "stopped ruma_tx (PID $OWN_RUMA_PID)"
  fi
  [ "$SYN_STARTED" = 1 ] && { "$KIT/synapse.sh" stop postgres || true; }
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$KIT/synapse.sh" setup >/dev/null
SYN_STARTED=1
"$KIT/synapse.sh" reset postgres
started=$("$KIT/synapse.sh" start postgres) || die "synapse.sh start postgres failed"
SYN_PID=$(sed -n 's/^PID=//p' <<<"$started")
SYN_PG=$(sed -n 's/^PG_PID=//p' <<<"$started")
SYN_URL=$(sed -n 's/^BASE_URL=//p' <<<"$started")
SYN_DIR=$BENCH_HOME/synapse/data-postgres
SECRET=$(sed -n 's/^registration_shared_secret: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$SYN_DIR/homeserver.yaml")
[ -n "$SECRET" ] || die "no registration_shared_secret in $SYN_DIR/homeserver.yaml"
note "Synapse PID $SYN_PID at $SYN_URL, PostgreSQL PID $SYN_PG"

write_config() { # $1 dir, $2 database, $3 listeners
  local dsn; dsn=$("$KIT/synapse.sh" createdb "$2" | sed -n 's/^DSN=//p')
  [ -n "$dsn" ] || die "synapse.sh createdb $2 failed"
  rm -rf "$1"; mkdir -p "$1"
  cat > "$1/ruma.toml" <<EOF
# written by bench/operators.sh on every run
server_name = "localhost"
data_dir = "$1/var"
$3
[database]
dsn = "$dsn"
[passwords]
bcrypt_rounds = $BCRYPT_ROUNDS
[rate_limits]
enabled = false
[logging]
level = "warn"
requests = "off"
EOF
}
RDIR=$ODIR/ruma
write_config "$RDIR" ops_ruma "[[listeners]]
endpoint = \"tcp:$RUMA_PORT:interface=127.0.0.1\"
resources = [\"client\"]
[[listeners]]
endpoint = \"tcp:$RUMA_METRICS_PORT:interface=127.0.0.1\"
resources = [\"metrics\"]"
write_config "$ODIR/import" ops_import "[[listeners]]
endpoint = \"tcp:$((RUMA_PORT + 2)):interface=127.0.0.1\"
resources = [\"client\"]"
RUMA_URL=http://127.0.0.1:$RUMA_PORT
( cd "$RDIR" && exec "$REPO/.venv/bin/twistd" -n --pidfile= ruma --config "$RDIR/ruma.toml" ) \
  >>"$RDIR/ruma.log" 2>&1 </dev/null &
OWN_RUMA_PID=$!
for _ in $(seq 1 1200); do
  curl -sf -o /dev/null --max-time 2 "$RUMA_URL/_matrix/client/versions" && break
  kill -0 "$OWN_RUMA_PID" 2>/dev/null || { tail -20 "$RDIR/ruma.log" >&2; die "ruma_tx exited"; }
  sleep 0.1
done
printf '%s\n' bench-password-1 | "$REPO/.venv/bin/ruma-admin" register-user --config "$RDIR/ruma.toml" --admin opadmin \
  || die "ruma-admin register-user failed"
note "ruma_tx PID $OWN_RUMA_PID at $RUMA_URL; results $OUT"

args=(--a-url "$RUMA_URL" --a-pid "$OWN_RUMA_PID" --b-url "$SYN_URL" --b-pid "$SYN_PID" --aux-pid "$SYN_PG"
      --metrics-url "http://127.0.0.1:$RUMA_METRICS_PORT/metrics" --synapse-secret "$SECRET"
      --synapse-dsn "postgresql://synapse:synapse@127.0.0.1:${SYNAPSE_PG_PORT:-5434}/synapse"
      --signing-key "$SYN_DIR/localhost.signing.key" --media-store "$SYN_DIR/media_store"
      --import-config "$ODIR/import/ruma.toml" --ruma-admin "$REPO/.venv/bin/ruma-admin"
      --stop-synapse-cmd "kill -TERM $SYN_PID; for i in \$(seq 1 300); do kill -0 $SYN_PID 2>/dev/null || exit 0; sleep 0.2; done; exit 1"
      --out "$OUT")
[ -n "${SCENARIOS:-}" ] && args+=(--scenarios "$SCENARIOS")
"$PY" "$HERE/operators.py" "${args[@]}" 2> >(tee -a "${OUT%.json}.log" >&2)
}
main "$@"
