#!/usr/bin/env bash
# End-to-end test: quire in a real browser (Debian's Chromium, headless, driven by
# playwright-core, pinned in package-lock.json; no browser download).
#
#   tests/e2e/run.sh
#
# Installs Chromium when /usr/bin/chromium is missing (apt-get), installs playwright-core
# (npm ci here) and the OP (npm ci in tests/interop, whose op.mjs is reused), builds quire
# in release (QUIRE_BIN=path skips the build; CI passes the one binary it builds for
# interop and e2e), then runs suite.mjs, which starts on free loopback ports:
#   - quire with local accounts (SQLite in a temporary folder),
#   - node oidc-provider (tests/interop/op.mjs) and a second quire with providers ["oidc"],
# drives both people's flows in the browser, and stops everything at the end.
# Screenshots of the main pages at 390 px and 1280 px go to E2E_SCREENSHOTS (default
# target/e2e-screenshots), named near the end. The last line is "N passed, N failed";
# exits non-zero on any failure.
#
# Time limits (seconds): E2E_BUILD_TIMEOUT (build, default 1800), E2E_TEST_TIMEOUT
# (start-up and the suite, default 180).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
NAME=e2e
# shellcheck source=../node-support/lib.sh
. "$ROOT/tests/node-support/lib.sh"
export CHROMIUM=/usr/bin/chromium

need_node

# Chromium from Debian, when missing.
if [ ! -x "$CHROMIUM" ]; then
  echo "e2e: $CHROMIUM missing, installing Debian's chromium"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then command -v sudo >/dev/null && SUDO="sudo -n"; fi
  export DEBIAN_FRONTEND=noninteractive
  APT_LOG="$(mktemp)"
  { timeout 180 $SUDO apt-get update && timeout 420 $SUDO apt-get install -y chromium; } >"$APT_LOG" 2>&1 \
    || { tail -n 40 "$APT_LOG" >&2; setup_failed "apt-get install chromium failed"; }
  rm -f "$APT_LOG"
  [ -x "$CHROMIUM" ] || setup_failed "no $CHROMIUM after apt-get install chromium"
fi

# playwright-core, and the OP it shares with the interop test.
npm_ci "$HERE"
npm_ci "$ROOT/tests/interop"
BUILD_TIMEOUT="${E2E_BUILD_TIMEOUT:-1800}" quire_bin
export HARNESS_TIMEOUT="${E2E_TEST_TIMEOUT:-180}"
export E2E_SCREENSHOTS="${E2E_SCREENSHOTS:-$ROOT/target/e2e-screenshots}"
run_harness "$HERE/suite.mjs"
