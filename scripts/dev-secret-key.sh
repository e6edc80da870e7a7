#!/usr/bin/env bash
# Prints this checkout's development SECRET_KEY, making it on first use: random, kept in
# .run/secret-key (not committed, readable by its owner only), so sign-ins and target
# callback secrets survive restarts of the demo. Harbor refuses to start without a strong
# SECRET_KEY unless DEBUG is on; `make` exports this one to everything it runs.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -s .run/secret-key ]; then
    mkdir -p .run
    (umask 077 && "${PYTHON3:-python3}" -c 'import secrets; print(secrets.token_urlsafe(50))' >.run/secret-key)
fi
cat .run/secret-key
