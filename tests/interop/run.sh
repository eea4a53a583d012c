#!/usr/bin/env bash
# Interop test: quire against a real, certified OpenID Provider (node `oidc-provider`,
# pinned in package.json / package-lock.json), both on loopback.
#
#   tests/interop/run.sh
#
# Installs the OP (npm ci), builds quire in release (QUIRE_BIN=path skips the build; CI
# passes the one binary it builds for interop and e2e), then runs driver.mjs, which starts
# the OP and `quire serve` on free ports, checks login through the OP's own login and
# consent pages, a post, RP-initiated logout, logout at the OP with back-channel logout
# and `quire doctor`, and stops both. Ends with the line "N passed, N failed"; exits
# non-zero on any failure.
#
# Time limits (seconds): INTEROP_BUILD_TIMEOUT (build, default 1800),
# INTEROP_TEST_TIMEOUT (start-up and driver, default 120).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
NAME=interop
# shellcheck source=../node-support/lib.sh
. "$ROOT/tests/node-support/lib.sh"

need_node
npm_ci "$HERE"
BUILD_TIMEOUT="${INTEROP_BUILD_TIMEOUT:-1800}" quire_bin
export HARNESS_TIMEOUT="${INTEROP_TEST_TIMEOUT:-120}"
run_harness "$HERE/driver.mjs"
