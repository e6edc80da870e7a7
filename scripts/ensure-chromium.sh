#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests (tests/ui/browser) when it is missing.
# Playwright drives /usr/bin/chromium; its own browser download cannot work on these
# machines. Quiet; exits 0 at once when Chromium is already there. Needs root (CI runs as
# root); prints why and exits non-zero if the install fails.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-chromium: $CHROMIUM is missing; run as root: apt-get install -y chromium" >&2
    exit 1
fi

echo "ensure-chromium: installing chromium (Debian package)"
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
if ! { apt-get update -qq && apt-get install -y -qq chromium; } >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    rm -f "$log"
    echo "ensure-chromium: could not install chromium" >&2
    exit 1
fi
rm -f "$log"
"$CHROMIUM" --version 2>/dev/null | head -n 1 || true
