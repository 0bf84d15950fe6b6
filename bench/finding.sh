#!/usr/bin/env bash
# finding.sh - user directory search and POST /search: ruma_tx and Synapse side by side
# (see bench/README.md, "finding.sh").
#
#   bench/finding.sh                  full sizes (10k users, 100k messages; the first run seeds)
#   SMOKE=1 bench/finding.sh          tiny sizes, a few minutes
#   SCENARIOS="directory search_rank" bench/finding.sh
#   SEED_ONLY=1 bench/finding.sh
#
# Needs the shared kit at BENCH_KIT (default /work/shared/bench). Uses the running Synapse
# (synapse.sh status) or starts one (BCRYPT_ROUNDS=4) and then stops it; starts ruma_tx from
# <repo>/.venv on 127.0.0.1:$RUMA_PORT with its database $RUMA_DB in Synapse's PostgreSQL
# cluster (the same PostgreSQL for both), and stops it at the end. Seeded data is kept.
#
# Environment: BENCH_HOME [$HOME/.cache/ruma-bench]  RUMA_PORT [18020]  RUMA_DB [ruma_finding]
#   OUT [$BENCH_HOME/results/finding-<date>-<time>.json]  and the sizes of finding.py:
#   FIND_USERS FIND_ROOMS FIND_MSGS FIND_SENDERS SEED_CONC FIND_CONC FIND_DURATION_S
set -euo pipefail
main() {
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
die() { echo "finding.sh: error: $*" >&2; exit 1; }
note() { echo "finding.sh: $*" >&2; }

KIT=${BENCH_KIT:-/work/shared/bench}
[ -f "$KIT/mxbench.py" ] && [ -x "$KIT/synapse.sh" ] || die "the shared benchmark kit is missing at $KIT"
export BENCH_KIT=$KIT
export BENCH_HOME=${BENCH_HOME:-$HOME/.cache/ruma-bench}
export BCRYPT_ROUNDS=${BCRYPT_ROUNDS:-4}
RUMA_PORT=${RUMA_PORT:-18020}
RUMA_DB=${RUMA_DB:-ruma_finding}
OUT=${OUT:-$BENCH_HOME/results/finding-$( [ "${SMOKE:-0}" = 1 ] && echo smoke- )$(date +%Y%m%d-%H%M%S).json}
mkdir -p "$(dirname "$OUT")" "$BENCH_HOME/finding/ruma"

BENCH_PYTHON=${BENCH_PYTHON:-$BENCH_HOME/harness-venv/bin/python}
if ! "$BENCH_PYTHON" -c 'import aiohttp, psutil' 2>/dev/null; then
  python3 -m venv "$BENCH_HOME/harness-venv"
  timeout 600 "$BENCH_HOME/harness-venv/bin/pip" install -q -r "$KIT/requirements.txt" || die "pip failed"
fi

OWN_RUMA_PID= OWN_SYN=0
cleanup() {
  if [ -n "$OWN_RUMA_PID" ] && kill -0 "$OWN_RUMA_PID" 2>/dev/null; then
    kill -TERM "$OWN_RUMA_PID"
    for _ in $(seq 1 300); do kill -0 "$OWN_RUMA_PID" 2>/dev/null || break; sleep 0.1; done
    note "stopped ruma_tx (PID $OWN_RUMA_PID)"
  fi
  [ "$OWN_SYN" = 1 ] && { "$KIT/synapse.sh" stop postgres || true; }
}
trap cleanup EXIT
trap 'exit 130' INT TERM

status=$("$KIT/synapse.sh" status 2>/dev/null || true)
SYN_PID=$(sed -n 's/^RUNNING_POSTGRES_PID=//p' <<<"$status")
SYN_PG=$(sed -n 's/^PG_PID=//p' <<<"$status")
if [ -z "$SYN_PID" ]; then
  [ -n "$SYN_PG" ] && die "Synapse's PostgreSQL runs without Synapse: start Synapse with synapse.sh first"
  OWN_SYN=1
  started=$("$KIT/synapse.sh" start postgres) || die "synapse.sh start postgres failed"
  SYN_PID=$(sed -n 's/^PID=//p' <<<"$started")
  SYN_PG=$(sed -n 's/^PG_PID=//p' <<<"$started")
fi
SYN_URL=$(sed -n 's/^BASE_URL=//p' <<<"$status")
SYN_URL=${SYN_URL:-http://127.0.0.1:${SYNAPSE_PORT:-18448}}
note "Synapse PID $SYN_PID at $SYN_URL, PostgreSQL PID $SYN_PG"

RUMA_URL=http://127.0.0.1:$RUMA_PORT
curl -s -o /dev/null --max-time 2 "$RUMA_URL/_matrix/client/versions" && die "something listens on $RUMA_PORT"
dsn=$("$KIT/synapse.sh" createdb "$RUMA_DB" | sed -n 's/^DSN=//p')
[ -n "$dsn" ] || die "synapse.sh createdb $RUMA_DB failed"
RDIR=$BENCH_HOME/finding/ruma
cat > "$RDIR/ruma.toml" <<EOF
# written by bench/finding.sh on every run
server_name = "localhost"
data_dir = "var"
[[listeners]]
endpoint = "tcp:$RUMA_PORT:interface=127.0.0.1"
resources = ["client"]
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
( cd "$RDIR" && exec "$REPO/.venv/bin/twistd" -n --pidfile= ruma --config "$RDIR/ruma.toml" ) \
  >>"$RDIR/ruma.log" 2>&1 </dev/null &
OWN_RUMA_PID=$!
for i in $(seq 1 1200); do   # at most ~2 min (a first start indexes nothing: the database is new)
  curl -sf -o /dev/null --max-time 2 "$RUMA_URL/_matrix/client/versions" && break
  kill -0 "$OWN_RUMA_PID" 2>/dev/null || { tail -20 "$RDIR/ruma.log" >&2; die "ruma_tx exited"; }
  sleep 0.1
done
note "ruma_tx PID $OWN_RUMA_PID at $RUMA_URL"
RUMA_CODE="$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?') (+$(git -C "$REPO" status --porcelain -- ruma_tx 2>/dev/null | wc -l) uncommitted files)"
export RUMA_CODE
args=(--a-url "$RUMA_URL" --a-label ruma_tx --a-pid "$OWN_RUMA_PID" --a-aux-pid "$SYN_PG"
      --b-url "$SYN_URL" --b-label synapse --b-pid "$SYN_PID" --b-aux-pid "$SYN_PG" --out "$OUT")
[ -n "${SCENARIOS:-}" ] && args+=(--scenarios "$SCENARIOS")
[ -n "${SEED_ONLY:-}" ] && args+=(--seed-only)
note "results: $OUT"
"$BENCH_PYTHON" "$HERE/finding.py" "${args[@]}" 2> >(tee -a "${OUT%.json}.log" >&2)
}
main "$@"
