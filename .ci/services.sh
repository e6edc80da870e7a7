#!/usr/bin/env bash
# Start the services Harbor needs (PostgreSQL, Redis) if they are not answering, and wait
# until they do. Used by `make` (db, test, demo) and by .ci/run. Idempotent and quick when
# both are already up. Uses this machine kind's own start commands (Debian packages).
set -euo pipefail

PGHOST=${PGHOST:-127.0.0.1}
REDIS_HOST=${REDIS_HOST:-127.0.0.1}

postgres_up() { pg_isready -q -h "$PGHOST" -p 5432 -U postgres; }
redis_up() { [ "$(redis-cli -h "$REDIS_HOST" -p 6379 ping 2>/dev/null)" = "PONG" ]; }

wait_for() {  # wait_for NAME CHECK: poll CHECK for up to 30 s
    local name=$1 check=$2
    for _ in $(seq 1 60); do
        if $check; then return 0; fi
        sleep 0.5
    done
    echo "services: $name did not come up" >&2
    return 1
}

if ! postgres_up; then
    echo "services: starting PostgreSQL"
    version=$(ls /etc/postgresql | sort -V | tail -n1)
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
    wait_for PostgreSQL postgres_up
fi

if ! redis_up; then
    echo "services: starting Redis"
    redis_args=(--daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no)
    if [ -d /var/lib/redis ] && [ -d /var/log/redis ]; then
        redis_args+=(--dir /var/lib/redis --logfile /var/log/redis/ci.log)
    fi
    redis-server "${redis_args[@]}"
    wait_for Redis redis_up
fi
