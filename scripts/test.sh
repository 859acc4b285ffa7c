#!/usr/bin/env bash
# The whole suite: lint, then pytest on SQLite and on PostgreSQL, each time for the demo project
# and for the second host project in tests/hosts/crm.
# Broker: Redis when one answers on 127.0.0.1:6379 (always in CI), else Celery's embedded
# filesystem broker. PostgreSQL runs when reachable; in CI (CI=true) both are required. The
# end-to-end worker tests run once more with RabbitMQ as the broker when it answers on
# 127.0.0.1:5672 (required in CI).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
mkdir -p var

PG_URL=${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/lookout_xero}
REDIS_URL=${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}
AMQP_URL=${TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672//}
required=${CI:-false}

reachable() {  # host port
  "$PY" -c "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 1)" "$1" "$2" 2>/dev/null
}

.venv/bin/ruff check .
.venv/bin/ruff format --check .
"$PY" manage.py makemigrations --check --dry-run >/dev/null
DJANGO_SETTINGS_MODULE=tests.hosts.crm.settings "$PY" -m django makemigrations --check --dry-run \
  >/dev/null

if reachable 127.0.0.1 6379; then
  broker=$REDIS_URL
elif [ "$required" = "true" ]; then
  echo "Redis is required in CI but is not answering on 127.0.0.1:6379" >&2; exit 1
else
  broker=filesystem://
  echo "Redis not reachable: using the embedded filesystem broker."
fi

pytest_on() {  # database-url pytest-arguments...
  local url=$1
  shift
  rm -rf var/test-broker
  DATABASE_URL=$url CELERY_BROKER_URL=$broker BROKER_DIR=$PWD/var/test-broker \
    "$PY" -m pytest "$@"
}

run_suite() {  # label database-url
  echo "=== tests on $1 (broker: ${broker%%://*}) ==="
  pytest_on "$2" "${PYTEST_ARGS[@]}"
  if [ "$names_paths" = "false" ]; then
    # A second host project, unlike the demo in every name (its own settings, models, mapping).
    echo "=== a second host, tests/hosts/crm, on $1 ==="
    status=0
    pytest_on "$2" --ds=tests.hosts.crm.settings tests/hosts/crm "${PYTEST_ARGS[@]}" || status=$?
    [ "$status" -eq 0 ] || [ "$status" -eq 5 ] || exit "$status"  # 5: -k selected none of its tests
  fi
}

PYTEST_ARGS=("$@")
names_paths=false  # arguments naming test files or folders are for the main suite only
for arg in "$@"; do
  if [ -e "${arg%%::*}" ]; then names_paths=true; fi
done
run_suite SQLite "sqlite:///$PWD/var/test-main.sqlite3"

if reachable 127.0.0.1 5432; then
  run_suite PostgreSQL "$PG_URL"
elif [ "$required" = "true" ]; then
  echo "PostgreSQL is required in CI but is not answering on 127.0.0.1:5432" >&2; exit 1
else
  echo "PostgreSQL not reachable: skipped the PostgreSQL run."
fi

# The production benchmark at smoke size (about 20 s), after a full run only: it proves the
# harness still drives real workers end to end; its figures mean nothing at this size.
if [ ${#PYTEST_ARGS[@]} -eq 0 ] && [ "$broker" != "filesystem://" ] && reachable 127.0.0.1 5432; then
  echo "=== production benchmark, smoke size (log: var/bench-smoke.log) ==="
  if ! BENCH_DATABASE_URL="${PG_URL}_bench" BENCH_REDIS_URL=$REDIS_URL \
    "$PY" scripts/bench_production.py --smoke >var/bench-smoke.log 2>&1; then
    tail -40 var/bench-smoke.log >&2
    exit 1
  fi
  tail -1 var/bench-smoke.log
fi

if reachable 127.0.0.1 5672; then
  broker=$AMQP_URL
  database="sqlite:///$PWD/var/test-main.sqlite3"
  reachable 127.0.0.1 5432 && database=$PG_URL
  echo "=== end-to-end worker tests again, with RabbitMQ as the broker ==="
  status=0
  pytest_on "$database" -m worker "${PYTEST_ARGS[@]}" || status=$?
  [ "$status" -eq 0 ] || [ "$status" -eq 5 ] || exit "$status"  # 5: -k selected none of them
elif [ "$required" = "true" ]; then
  echo "RabbitMQ is required in CI but is not answering on 127.0.0.1:5672" >&2; exit 1
else
  echo "RabbitMQ not reachable: skipped the RabbitMQ run."
fi
