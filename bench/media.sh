#!/usr/bin/env bash
# media.sh - the media repository, ruma_tx and Synapse side by side (bench/media.py).
#
#   bench/media.sh                          every scenario
#   SCENARIOS="upload_1mb thumbnail" bench/media.sh
#
# Needs the shared benchmark kit at BENCH_KIT (default /work/shared/bench). Uses the running
# reference Synapse (synapse.sh status) or starts one with synapse.sh (and stops it at the
# end); starts ruma_tx from <repo>/.venv on RUMA_PORT with a database in Synapse's PostgreSQL
# cluster (synapse.sh createdb ruma_media) and stops it at the end. Everything on 127.0.0.1.
#
# Environment: BENCH_HOME [$HOME/.cache/ruma-bench]  BENCH_KIT [/work/shared/bench]
#   RUMA_PORT [18012]  OUT [$BENCH_HOME/results/media-<date>-<time>.json]  SCENARIOS [all]
#   Sizes: UP1_N UP1_C DL1_N DL1_C UP50_N DL50_N DL50_C THUMB_RUNS (see media.py)
set -euo pipefail
main() {
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
die() { echo "media.sh: error: $*" >&2; exit 1; }
note() { echo "media.sh: $*" >&2; }

KIT=${BENCH_KIT:-/work/shared/bench}
[ -f "$KIT/mxbench.py" ] && [ -x "$KIT/synapse.sh" ] || die "the shared benchmark kit is missing at $KIT"
export BENCH_KIT=$KIT
export BENCH_HOME=${BENCH_HOME:-$HOME/.cache/ruma-bench}
RUMA_PORT=${RUMA_PORT:-18012}
OUT=${OUT:-$BENCH_HOME/results/media-$(date +%Y%m%d-%H%M%S).json}
mkdir -p "$(dirname "$OUT")"
BENCH_PYTHON=${BENCH_PYTHON:-$BENCH_HOME/harness-venv/bin/python}
if ! "$BENCH_PYTHON" -c 'import aiohttp, psutil' 2>/dev/null; then
  python3 -m venv "$BENCH_HOME/harness-venv"
  timeout 600 "$BENCH_HOME/harness-venv/bin/pip" install -q -r "$KIT/requirements.txt" || die "harness venv"
fi
[ -x "$REPO/.venv/bin/twistd" ] || die "no $REPO/.venv/bin/twistd: install ruma_tx there first"

OWN_RUMA_PID= OWN_SYN=0
cleanup() {
  local i
  if [ -n "$OWN_RUMA_PID" ] && kill -0 "$OWN_RUMA_PID" 2>/dev/null; then
    kill -TERM "$OWN_RUMA_PID"
    for i in $(seq 1 300); do kill -0 "$OWN_RUMA_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$OWN_RUMA_PID" 2>/dev/null && kill -KILL "$OWN_RUMA_PID"
    note "stopped ruma_tx (PID $OWN_RUMA_PID)"
  fi
  if [ "$OWN_SYN" = 1 ]; then "$KIT/synapse.sh" stop postgres || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

status=$("$KIT/synapse.sh" status 2>/dev/null || true)
SYN_PID=$(sed -n 's/^RUNNING_POSTGRES_PID=//p' <<<"$status")
SYN_PG=$(sed -n 's/^PG_PID=//p' <<<"$status")
if [ -z "$SYN_PID" ]; then
  OWN_SYN=1
  start_out=$("$KIT/synapse.sh" start postgres) || die "synapse.sh start postgres failed"
  SYN_PID=$(sed -n 's/^PID=//p' <<<"$start_out")
  SYN_PG=$(sed -n 's/^PG_PID=//p' <<<"$start_out")
else
  note "using the running Synapse (PID $SYN_PID)"
fi
SYN_URL=http://127.0.0.1:${SYNAPSE_PORT:-18448}

dsn=$("$KIT/synapse.sh" createdb ruma_media | sed -n 's/^DSN=//p')
[ -n "$dsn" ] || die "synapse.sh createdb ruma_media failed"
RDIR=$BENCH_HOME/media/ruma
mkdir -p "$RDIR"
cat > "$RDIR/ruma.toml" <<EOF
server_name = "localhost"
data_dir = "var"
[[listeners]]
endpoint = "tcp:$RUMA_PORT:interface=127.0.0.1"
resources = ["client"]
[database]
dsn = "$dsn"
[passwords]
bcrypt_rounds = 4
[rate_limits]
enabled = false
[logging]
level = "warn"
requests = "off"
[media]
max_upload_size = 314572800
EOF
( cd "$RDIR" && exec "$REPO/.venv/bin/twistd" -n --pidfile= ruma --config "$RDIR/ruma.toml" ) \
  >"$RDIR/ruma.log" 2>&1 &
OWN_RUMA_PID=$!
for _ in $(seq 1 600); do
  curl -sf -o /dev/null "http://127.0.0.1:$RUMA_PORT/_matrix/client/versions" && break
  kill -0 "$OWN_RUMA_PID" 2>/dev/null || die "ruma_tx exited; see $RDIR/ruma.log"
  sleep 0.1
done
note "ruma_tx PID $OWN_RUMA_PID on $RUMA_PORT; Synapse PID $SYN_PID; results $OUT"

# shellcheck disable=SC2086
"$BENCH_PYTHON" "$HERE/media.py" \
  --a-url "http://127.0.0.1:$RUMA_PORT" --a-label ruma_tx --a-pid "$OWN_RUMA_PID" --a-aux-pid $SYN_PG \
  --b-url "$SYN_URL" --b-label synapse --b-pid "$SYN_PID" --b-aux-pid $SYN_PG \
  --out "$OUT" ${SCENARIOS:+--scenarios $SCENARIOS}
}
main "$@"
