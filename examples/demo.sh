#!/usr/bin/env bash
# Harbor's demo, run by `make demo` (after install, services, db and migrate) and `make stop`.
#
#   examples/demo.sh start   (re)start web, worker, beat and the example external CI in the
#                            background, import examples/plans/*.yaml, build the plan
#                            external-ci to the end, and print its URL and the sign-in
#   examples/demo.sh stop    stop every process the demo started
#
# Each process runs in its own session (setsid), so `stop` ends it with its children
# (gunicorn's and celery's worker processes) by process group, from the pid file in .run/.
# Logs are .run/<name>.log.
set -euo pipefail
cd "$(dirname "$0")/.."

RUN=.run
VENV=${VENV:-.venv}
PY=$VENV/bin/python
WEB_URL=http://127.0.0.1:8000
CI_URL=http://127.0.0.1:9900
PREFIX=${HARBOR_QUEUE_PREFIX:-harbor}
PROCESSES=(external-ci beat worker engine web)

start_process() {  # start_process NAME COMMAND...: run in the background, pid in .run/NAME.pid
    local name=$1
    shift
    setsid "$@" >"$RUN/$name.log" 2>&1 </dev/null &
    echo $! >"$RUN/$name.pid"
}

stop_process() {  # stop_process NAME: TERM its process group, KILL it after 10 s
    local name=$1 pidfile=$RUN/$1.pid pid
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        echo "stopping $name (pid $pid)"
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
}

wait_for_url() {  # wait_for_url NAME URL: up to 30 s
    local name=$1 url=$2
    for _ in $(seq 1 150); do
        if curl -fsS -o /dev/null "$url" 2>/dev/null; then return 0; fi
        sleep 0.2
    done
    echo "demo: $name did not answer at $url; see $RUN/$name.log" >&2
    tail -n 20 "$RUN/$name.log" >&2 || true
    return 1
}

refuse_busy_port() {  # the demo must not talk to something else already listening there
    local url=$1
    if curl -s -o /dev/null "$url" 2>/dev/null; then
        echo "demo: something not started by the demo already answers at $url; stop it first" >&2
        exit 1
    fi
}

stop_all() {
    for name in "${PROCESSES[@]}"; do stop_process "$name"; done
}

reset_admin() {  # create or reset the UI user "admin" with a new random password
    local password
    password=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(12))')
    ADMIN_PASSWORD=$password "$PY" manage.py shell -v 0 -c "
import os
from accounts.models import User
user, _ = User.objects.get_or_create(username='admin')
user.is_staff = user.is_superuser = True
user.set_password(os.environ['ADMIN_PASSWORD'])
user.save()"
    (umask 077 && echo "$password" >"$RUN/admin-password")
}

start_all() {
    local began token commit status=0
    began=$(date +%s)
    mkdir -p "$RUN"
    stop_all
    refuse_busy_port "$WEB_URL/healthz"
    refuse_busy_port "$CI_URL/done"

    # Every process below gets the same key: the one `make` passes on, else the checkout's.
    SECRET_KEY=${SECRET_KEY:-$(PYTHON3=$PY bash scripts/dev-secret-key.sh)}
    export SECRET_KEY
    reset_admin
    token=$("$PY" manage.py createapitoken external-ci | tail -n 1)

    start_process web "$VENV/bin/gunicorn" harbor.wsgi -w 2 --bind 127.0.0.1:8000 \
        --no-control-socket --access-logfile - --error-logfile -
    # The engine's queue has a worker of its own, so steps that run long never delay a
    # decision (docs/design.md §4.1).
    start_process engine "$VENV/bin/celery" -A harbor worker -Q "$PREFIX.engine" -c 1 \
        -n "engine@%h" -l INFO
    start_process worker "$VENV/bin/celery" -A harbor worker -Q "$PREFIX.targets" -c 2 \
        -n "targets@%h" -l INFO
    start_process beat "$VENV/bin/celery" -A harbor beat -l INFO \
        --schedule "$RUN/celerybeat-schedule"
    HARBOR_URL=$WEB_URL HARBOR_TOKEN=$token start_process external-ci \
        "$PY" -u examples/external_ci.py
    wait_for_url web "$WEB_URL/healthz"
    wait_for_url external-ci "$CI_URL/done?build=demo-check"
    echo "demo: web, engine and target workers, beat and external-ci are up (logs in $RUN/)"

    for plan in examples/plans/*.yaml; do "$PY" manage.py importplan "$plan"; done
    commit=$(git rev-parse HEAD 2>/dev/null || "$PY" -c 'import secrets; print(secrets.token_hex(20))')
    "$PY" manage.py build external-ci --repository "file://$PWD" --commit "$commit" \
        --wait --timeout 120 | tee "$RUN/demo-build.txt" || status=$?

    echo
    echo "Harbor is running at $WEB_URL/ (took $(($(date +%s) - began)) s)"
    echo "  build:   $(sed -n 2p "$RUN/demo-build.txt")"
    echo "  sign in: admin / $(cat "$RUN/admin-password")"
    echo "  API token of the external CI: $token"
    echo "  logs:    $RUN/{web,engine,worker,beat,external-ci}.log    stop: make stop"
    if [ "$status" -ne 0 ]; then
        echo "demo: the build did not pass (exit status $status); see $RUN/*.log" >&2
    fi
    return "$status"
}

case "${1:-}" in
start) start_all ;;
stop) stop_all ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
