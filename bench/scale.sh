#!/usr/bin/env bash
# scale.sh - ruma_tx and Synapse side by side "at scale" (see bench/README.md).
#
#   bench/scale.sh                 full sizes (first run seeds for hours; later runs reuse it)
#   SMOKE=1 bench/scale.sh         tiny sizes, a couple of minutes
#   SCENARIOS="initial_sync join" bench/scale.sh
#   DRIVER=sliding bench/scale.sh  another driver's scenarios (bench/sliding.py: sliding sync)
#
# Needs the shared benchmark kit at BENCH_KIT (default /work/shared/bench: mxbench.py,
# synapse.sh). It starts what is not running (Synapse via synapse.sh, ruma_tx with twistd from
# a scratch folder under $BENCH_HOME/scale/ruma) and stops at the end only what it started.
# Seeded data (Synapse's database, ruma_tx's database ruma_scale in Synapse's PostgreSQL
# cluster, the state files under $BENCH_HOME/scale) is kept for the next run.
#
# Environment (defaults in brackets):
#   BENCH_HOME [$HOME/.cache/ruma-bench]   BENCH_KIT [/work/shared/bench]
#   DRIVER [scale]  runs bench/$DRIVER.py (scale.py, or sliding.py, which plugs into scale.py)
#   SMOKE [0]  ROUNDS [1]  OUT [$BENCH_HOME/results/$DRIVER-<full|smoke>-<date>-<time>.json]
#   SCENARIOS [all of the driver's; scale.py: initial_sync join big_fanout big_saturated
#              messages fanout]
#   BCRYPT_ROUNDS [4]   bcrypt cost of BOTH servers (mass user creation)
#   RUMA_URL / RUMA_PID   use an already running ruma_tx instead of starting one
#   RUMA_PORT [18010]   RUMA_VENV [<repo>/.venv if its twistd has the ruma plugin, else
#                       /tmp/bench-venv, created with pip install -e <repo>]
#   RUMA_DB [ruma_scale]  RUMA_START_TRIES [3]  RUMA_RETRY_WAIT_S [180]
#   SYNAPSE_PORT [18448]  (Synapse is started by synapse.sh unless it already runs)
#   SEED_PARALLEL [1]  seed both servers at once; CAP_S [300] cap of one measured step
#   SEED_ONLY=1  only seed;  PROFILE=1 [PY_SPY=path]  py-spy on ruma_tx in every measured window
#   Sizes: IS_ROOMS IS_MSGS IS_RUNS  BIG_SIZES JOIN_PROBE  FAN_SYNCERS FAN_M FAN_RATE
#          SAT_M SAT_RATE FAN_TIMELINE_LIMIT FAN_PRESENCE  MSG_SIZES MSG_MAX_B MSG_PAGES
#          MSG_POSITIONS MSG_SENDERS  MF_USERS MF_M MF_RATE  SEED_CONC (see README.md)
set -euo pipefail
# The whole script is one function, read in full before it runs: editing this file while
# a run is under way cannot change what that run executes.
main() {
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true   # 1,000 long-polling syncers

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
die() { echo "scale.sh: error: $*" >&2; exit 1; }
note() { echo "scale.sh: $*" >&2; }

KIT=${BENCH_KIT:-/work/shared/bench}
if [ ! -f "$KIT/mxbench.py" ] || [ ! -x "$KIT/synapse.sh" ]; then
  die "the shared benchmark kit is missing: $KIT/mxbench.py and $KIT/synapse.sh are needed.
  bench/ runs against Synapse with the kit in /work/shared/bench (it exists only on the
  project's benchmark machine); set BENCH_KIT if it lives elsewhere. The test suite never needs it."
fi
export BENCH_KIT=$KIT
export BENCH_HOME=${BENCH_HOME:-$HOME/.cache/ruma-bench}
export BCRYPT_ROUNDS=${BCRYPT_ROUNDS:-4}
SMOKE=${SMOKE:-0}
ROUNDS=${ROUNDS:-1}
DRIVER=${DRIVER:-scale}
[ -f "$HERE/$DRIVER.py" ] || die "no driver $HERE/$DRIVER.py (DRIVER=$DRIVER)"
RUMA_PORT=${RUMA_PORT:-18010}
RUMA_DB=${RUMA_DB:-ruma_scale}
RUMA_START_TRIES=${RUMA_START_TRIES:-3}
RUMA_RETRY_WAIT_S=${RUMA_RETRY_WAIT_S:-180}
SYN_URL=http://127.0.0.1:${SYNAPSE_PORT:-18448}
tag=$( [ "$SMOKE" = 1 ] && echo smoke || echo full )
OUT=${OUT:-$BENCH_HOME/results/$DRIVER-$tag-$(date +%Y%m%d-%H%M%S).json}
LOG=${OUT%.json}.log
mkdir -p "$(dirname "$OUT")" "$BENCH_HOME/scale"
[ -e "$OUT" ] && die "$OUT exists; pick another OUT"

# ---- harness interpreter (aiohttp + psutil), as compare.sh makes it
if [ -z "${BENCH_PYTHON:-}" ]; then
  BENCH_PYTHON=$BENCH_HOME/harness-venv/bin/python
  if ! "$BENCH_PYTHON" -c 'import aiohttp, psutil' 2>/dev/null; then
    note "creating $BENCH_HOME/harness-venv"
    python3 -m venv "$BENCH_HOME/harness-venv"
    timeout 600 "$BENCH_HOME/harness-venv/bin/pip" install -q -r "$KIT/requirements.txt" \
      || die "pip install -r $KIT/requirements.txt failed"
  fi
fi
"$BENCH_PYTHON" -c 'import aiohttp, psutil' || die "$BENCH_PYTHON lacks aiohttp/psutil"

# ---- cleanup: only what this script started, by PID
OWN_RUMA_PID= OWN_SYN=0 PG_WAS_RUNNING=0 SYN_PID= SYN_PG=
cleanup() {
  local i
  if [ -n "$OWN_RUMA_PID" ] && kill -0 "$OWN_RUMA_PID" 2>/dev/null; then
    kill -TERM "$OWN_RUMA_PID"
    for i in $(seq 1 300); do kill -0 "$OWN_RUMA_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$OWN_RUMA_PID" 2>/dev/null && kill -KILL "$OWN_RUMA_PID"
    note "stopped ruma_tx (PID $OWN_RUMA_PID)"
  fi
  if [ "$OWN_SYN" = 1 ]; then
    if [ "$PG_WAS_RUNNING" = 1 ]; then
      # the PostgreSQL cluster was up before us: stop Synapse only
      if [ -n "$SYN_PID" ] && kill -0 "$SYN_PID" 2>/dev/null; then
        kill -TERM "$SYN_PID"
        for i in $(seq 1 150); do kill -0 "$SYN_PID" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$SYN_PID" 2>/dev/null && kill -KILL "$SYN_PID"
        note "stopped Synapse (PID $SYN_PID); left PostgreSQL running as found"
      fi
    else
      "$KIT/synapse.sh" stop postgres || true
    fi
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- Synapse (on its private PostgreSQL cluster)
status=$("$KIT/synapse.sh" status 2>/dev/null || true)
running=$(sed -n 's/^RUNNING_POSTGRES_PID=//p' <<<"$status")
if [ -n "$running" ]; then
  SYN_PID=$running
  SYN_PG=$(sed -n 's/^PG_PID=//p' <<<"$status")
  note "using the running Synapse (PID $SYN_PID); not stopping it at the end"
  ov=$BENCH_HOME/synapse/data-postgres/overrides.yaml
  syn_rounds=$(sed -n 's/^bcrypt_rounds: //p' "$ov" 2>/dev/null || true)
  [ "$syn_rounds" = "$BCRYPT_ROUNDS" ] || note "WARNING: Synapse runs with bcrypt_rounds=${syn_rounds:-?}, ruma_tx gets $BCRYPT_ROUNDS"
else
  [ -n "$(sed -n 's/^PG_PID=//p' <<<"$status")" ] && PG_WAS_RUNNING=1
  OWN_SYN=1
  start_out=$("$KIT/synapse.sh" start postgres) || die "synapse.sh start postgres failed"
  SYN_PID=$(sed -n 's/^PID=//p' <<<"$start_out")
  SYN_PG=$(sed -n 's/^PG_PID=//p' <<<"$start_out")
  note "started Synapse (PID $SYN_PID, $(sed -n 's/^STARTUP_MS=//p' <<<"$start_out") ms), bcrypt $BCRYPT_ROUNDS"
fi
[ -n "$SYN_PID" ] && [ -n "$SYN_PG" ] || die "could not determine Synapse's PID / PostgreSQL PID"

# ---- ruma_tx (its database in the same cluster)
if [ -n "${RUMA_URL:-}" ]; then
  curl -sf -o /dev/null --max-time 5 "$RUMA_URL/_matrix/client/versions" || die "$RUMA_URL does not answer"
  RUMA_PID=${RUMA_PID:-}
  [ -n "$RUMA_PID" ] || note "WARNING: no RUMA_PID: no CPU figures for ruma_tx"
else
  RUMA_URL=http://127.0.0.1:$RUMA_PORT
  curl -s -o /dev/null --max-time 2 "$RUMA_URL/_matrix/client/versions" \
    && die "something already listens on 127.0.0.1:$RUMA_PORT (set RUMA_URL/RUMA_PID to use it)"
  dsn=$("$KIT/synapse.sh" createdb "$RUMA_DB" | sed -n 's/^DSN=//p')
  [ -n "$dsn" ] || die "synapse.sh createdb $RUMA_DB failed"
  has_ruma_plugin() { # $1 = venv; read all of twistd's output (grep -q + pipefail = SIGPIPE)
    [ -x "$1/bin/twistd" ] || return 1
    local out; out=$("$1/bin/twistd" --help 2>/dev/null || true)
    grep -qw ruma <<<"$out"
  }
  if [ -z "${RUMA_VENV:-}" ]; then
    if has_ruma_plugin "$REPO/.venv"; then RUMA_VENV=$REPO/.venv; else RUMA_VENV=/tmp/bench-venv; fi
  fi
  if ! has_ruma_plugin "$RUMA_VENV"; then
    note "installing ruma_tx into $RUMA_VENV"
    python3 -m venv "$RUMA_VENV"
    timeout 900 "$RUMA_VENV/bin/pip" install -q -e "$REPO" --config-settings editable_mode=compat \
      || die "pip install -e $REPO failed"
    has_ruma_plugin "$RUMA_VENV" || die "twistd in $RUMA_VENV has no ruma plugin"
  fi
  RDIR=$BENCH_HOME/scale/ruma   # keeps data_dir (the macaroon key: tokens stay valid)
  mkdir -p "$RDIR"
  cat > "$RDIR/ruma.toml" <<EOF
# written by bench/scale.sh on every run
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
  for try in $(seq 1 "$RUMA_START_TRIES"); do
    t0=$(date +%s%N)
    # absolute config path: a distinct command line (other ruma_tx daemons run "--config ruma.toml")
    ( cd "$RDIR" && exec "$RUMA_VENV/bin/twistd" -n --pidfile= ruma --config "$RDIR/ruma.toml" ) \
      >>"$RDIR/ruma.log" 2>&1 </dev/null &
    OWN_RUMA_PID=$!
    ok=0
    for i in $(seq 1 600); do   # at most ~60 s
      if curl -sf -o /dev/null --max-time 2 "$RUMA_URL/_matrix/client/versions"; then ok=1; break; fi
      kill -0 "$OWN_RUMA_PID" 2>/dev/null || break
      sleep 0.1
    done
    if [ "$ok" = 1 ]; then
      note "started ruma_tx (PID $OWN_RUMA_PID, $(( ($(date +%s%N) - t0) / 1000000 )) ms) from $RUMA_VENV, log $RDIR/ruma.log"
      break
    fi
    tail -20 "$RDIR/ruma.log" >&2
    if kill -0 "$OWN_RUMA_PID" 2>/dev/null; then kill -TERM "$OWN_RUMA_PID"; sleep 2; fi
    OWN_RUMA_PID=
    [ "$try" -lt "$RUMA_START_TRIES" ] || die "ruma_tx did not start ($RUMA_START_TRIES tries); see $RDIR/ruma.log"
    note "ruma_tx did not start (try $try; maybe a half-finished change in the tree); retrying in ${RUMA_RETRY_WAIT_S}s"
    sleep "$RUMA_RETRY_WAIT_S"
  done
  RUMA_PID=$OWN_RUMA_PID
fi

# ---- run
# which ruma_tx code is measured (read-only git queries; the tree may have uncommitted changes)
if git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1; then
  RUMA_CODE="$(git -C "$REPO" rev-parse --short HEAD) $(git -C "$REPO" log -1 --format=%s | cut -c1-70)"
  dirty=$(git -C "$REPO" status --porcelain -- ruma_tx | wc -l)
  [ "$dirty" -gt 0 ] && RUMA_CODE="$RUMA_CODE (+$dirty uncommitted files under ruma_tx/)"
  export RUMA_CODE
fi
args=(--a-url "$RUMA_URL" --a-label ruma_tx --b-url "$SYN_URL" --b-label synapse
      --b-pid "$SYN_PID" --b-aux-pid "$SYN_PG" --a-aux-pid "$SYN_PG"
      --rounds "$ROUNDS" --out "$OUT"
      --seed-parallel "${SEED_PARALLEL:-1}" --cap-s "${CAP_S:-300}")
[ -n "${RUMA_PID:-}" ] && args+=(--a-pid "$RUMA_PID")
[ -n "${SCENARIOS:-}" ] && args+=(--scenarios "$SCENARIOS")   # else all of the driver's
[ "$SMOKE" = 1 ] && args+=(--smoke)
[ -n "${SEED_ONLY:-}" ] && args+=(--seed-only)
if [ "${PROFILE:-0}" = 1 ]; then   # py-spy on ruma_tx during every measured window
  PY_SPY=${PY_SPY:-$(command -v py-spy || true)}
  [ -n "$PY_SPY" ] && [ -x "$PY_SPY" ] || die "PROFILE=1 needs py-spy (pip install py-spy; or set PY_SPY)"
  [ -n "${RUMA_PID:-}" ] || die "PROFILE=1 needs ruma_tx's PID"
  args+=(--profile-dir "${OUT%.json}-profiles" --py-spy "$PY_SPY")
fi
note "results: $OUT (log: $LOG)"
rc=0
"$BENCH_PYTHON" "$HERE/$DRIVER.py" "${args[@]}" 2> >(tee -a "$LOG" >&2) || rc=$?
exit $rc
}
main "$@"
exit $?
