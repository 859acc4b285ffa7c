#!/usr/bin/env bash
# `make test` runs this script; `make test-all` runs `make test`, then this script with
# --slow-only (what --all adds). `bash scripts/test.sh --all` runs both in one go.
#
# make test: ruff, the migrations checks, then the suite less its `slow` tests on SQLite and, at
# the same time, on PostgreSQL: real Celery workers, the fake Xero over HTTP and the admin in
# headless Chromium included. The two passes share the two cores well, since each mostly waits
# on a worker, a socket or the browser. Tests that use no database run once, in the SQLite pass.
#
# make test-all adds, after that, what is slow by nature: the `slow` tests (workers killed with
# SIGKILL, the production lease waited out) and the second host project (tests/hosts/crm) on
# both databases, the worker tests again with RabbitMQ as the broker, and the production
# benchmark at smoke size. Each part prints its time, and a summary of them closes the run.
#
# Broker: Redis when it answers (always in CI), db 15 for the SQLite pass and db 14 for the
# PostgreSQL pass (TEST_REDIS_URL, TEST_REDIS_URL_POSTGRES), so the two passes' workers never
# take each other's messages; else Celery's embedded filesystem broker, a folder per pass.
# PostgreSQL (TEST_POSTGRES_URL) runs when it answers; RabbitMQ (TEST_AMQP_URL) likewise, for
# --all. In CI (CI=true) all three are required.
#
# Other arguments are pytest's, for every pass: `bash scripts/test.sh -x -k admin`. Arguments
# naming test files or folders run those on both databases, without the second host.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
mkdir -p var

all=false  # the slow parts as well
fast=true  # lint and the suite less its slow tests
case "${1:-}" in
  --all) all=true; shift ;;
  --slow-only) all=true; fast=false; shift ;;
esac
PG_URL=${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/lookout_xero}
REDIS_URL=${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}
REDIS_URL_PG=${TEST_REDIS_URL_POSTGRES:-redis://127.0.0.1:6379/14}
AMQP_URL=${TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672//}
required=${CI:-false}

PYTEST_ARGS=("$@")
names_paths=false  # arguments naming test files or folders are for the main suite only
for arg in "$@"; do
  if [ -e "${arg%%::*}" ]; then names_paths=true; fi
done

reachable() {  # url: does something answer at its host and port?
  "$PY" - "$1" 2>/dev/null <<'EOF'
import socket, sys, urllib.parse
url = urllib.parse.urlsplit(sys.argv[1])
port = url.port or {"redis": 6379, "amqp": 5672}.get(url.scheme, 5432)
socket.create_connection((url.hostname or "127.0.0.1", port), 1)
EOF
}

require() {  # what url
  if reachable "$2"; then return 0; fi
  if [ "$required" = "true" ]; then
    echo "$1 is required in CI but is not answering at $(sed -E 's#//[^/@]*@#//#' <<<"$2")" >&2
    exit 1
  fi
  return 1
}

TIMES=()
started=$(date +%s)
part_started=$started
part() {  # label: start timing a part
  part_label=$1
  part_started=$(date +%s)
  echo "=== $1 ==="
}
part_done() {
  local seconds=$(($(date +%s) - part_started))
  TIMES+=("$(printf '%5d s  %s' "$seconds" "$part_label")")
  echo "--- $part_label: $seconds s"
}
summary() {
  echo "=== times ==="
  printf '%s\n' "${TIMES[@]}"
  printf '%5d s  in all\n' $(($(date +%s) - started))
}
trap 'status=$?; [ ${#TIMES[@]} -eq 0 ] || summary; exit $status' EXIT

broker_for() {  # redis-url broker-dir: the pass's broker URL
  if require Redis "$1"; then
    echo "$1"
  else
    echo "filesystem://"
  fi
}

pytest_on() {  # database-url broker-url label pytest-arguments...
  local url=$1 broker=$2 label=$3
  shift 3
  local dir=$PWD/var/test-broker-$label
  rm -rf "$dir"
  DATABASE_URL=$url CELERY_BROKER_URL=$broker BROKER_DIR=$dir \
    TEST_SQLITE_PATH=$PWD/var/test-$label.sqlite3 "$PY" -m pytest "$@"
}

# The same tests on SQLite (output here) and on PostgreSQL (output to var/, printed after):
# at once, each with its own broker, test database and worker.
both() {  # label pytest-arguments...
  local label=$1
  shift
  part "$label on SQLite (broker: ${broker%%://*}) and PostgreSQL (broker: ${broker_pg%%://*})"
  local log=var/test-postgresql.log pg_pid="" status=0 pg_status=0
  if [ "$postgres" = "true" ]; then
    # --database-tests-only: what uses no database has nothing new to show on a second one.
    pytest_on "$PG_URL" "$broker_pg" postgresql -p no:cacheprovider --database-tests-only "$@" \
      >"$log" 2>&1 &
    pg_pid=$!
    echo "(PostgreSQL pass running meanwhile; its output follows, and is kept in $log)"
  fi
  pytest_on "sqlite:///$PWD/var/test-main.sqlite3" "$broker" sqlite "$@" || status=$?
  if [ -n "$pg_pid" ]; then
    wait "$pg_pid" || pg_status=$?
    echo "--- PostgreSQL: $label"
    cat "$log"
  fi
  part_done
  # 5: the selection (-k, -m, file names) left none of these tests.
  for code in "$status" "$pg_status"; do
    [ "$code" -eq 0 ] || [ "$code" -eq 5 ] || exit "$code"
  done
}

if [ "$fast" = "true" ]; then
  part "lint and migrations"
  .venv/bin/ruff check .
  .venv/bin/ruff format --check .
  "$PY" manage.py makemigrations --check --dry-run >/dev/null
  DJANGO_SETTINGS_MODULE=tests.hosts.crm.settings "$PY" -m django makemigrations --check \
    --dry-run >/dev/null
  part_done
fi

broker=$(broker_for "$REDIS_URL")
broker_pg=$(broker_for "$REDIS_URL_PG")
[ "$broker" != "filesystem://" ] || echo "Redis not reachable: the embedded filesystem broker."
postgres=false
if require PostgreSQL "$PG_URL"; then
  postgres=true
else
  echo "PostgreSQL not reachable: SQLite only."
fi

if [ "$fast" = "true" ]; then
  both "the suite less its slow tests" -m "not slow" "${PYTEST_ARGS[@]}"
fi
[ "$all" = "true" ] || exit 0

both "the slow tests" -m slow "${PYTEST_ARGS[@]}"
if [ "$names_paths" = "false" ]; then
  # A second host project, unlike the demo in every name (its own settings, models, mapping).
  both "the second host, tests/hosts/crm" --ds=tests.hosts.crm.settings tests/hosts/crm \
    "${PYTEST_ARGS[@]}"
fi

if require RabbitMQ "$AMQP_URL"; then
  database="sqlite:///$PWD/var/test-main.sqlite3"
  [ "$postgres" = "true" ] && database=$PG_URL
  part "the worker tests again, with RabbitMQ as the broker"
  status=0
  pytest_on "$database" "$AMQP_URL" rabbitmq -m worker "${PYTEST_ARGS[@]}" || status=$?
  part_done
  [ "$status" -eq 0 ] || [ "$status" -eq 5 ] || exit "$status"
else
  echo "RabbitMQ not reachable: skipped the RabbitMQ run."
fi

# The production benchmark at smoke size (about 20 s), after a full run only: it proves the
# harness still drives real workers end to end; its figures mean nothing at this size.
if [ ${#PYTEST_ARGS[@]} -eq 0 ] && [ "$broker" != "filesystem://" ] && [ "$postgres" = "true" ]
then
  part "production benchmark, smoke size (log: var/bench-smoke.log)"
  if ! BENCH_DATABASE_URL="${PG_URL}_bench" BENCH_REDIS_URL=$REDIS_URL \
    "$PY" scripts/bench_production.py --smoke >var/bench-smoke.log 2>&1; then
    tail -40 var/bench-smoke.log >&2
    exit 1
  fi
  tail -1 var/bench-smoke.log
  part_done
fi
