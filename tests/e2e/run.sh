#!/usr/bin/env bash
# End-to-end test: quire in a real browser (Debian's Chromium, headless, driven by
# playwright-core, pinned in package-lock.json; no browser download).
#
#   tests/e2e/run.sh
#
# Installs Chromium when /usr/bin/chromium is missing (apt-get), installs playwright-core
# (npm ci here) and the OP (npm ci in tests/interop, whose op.mjs is reused), builds quire
# in release (QUIRE_BIN=path skips the build), then starts on free loopback ports:
#   - quire with local accounts (SQLite in a temporary folder),
#   - node oidc-provider (tests/interop/op.mjs) and a second quire with providers ["oidc"],
# runs suite.mjs, and stops everything on exit. Screenshots of the main pages at 390 px
# and 1280 px go to E2E_SCREENSHOTS (default target/e2e-screenshots), named near the end.
# The last line is "N passed, N failed"; exits non-zero on any failure.
#
# Time limits (seconds): E2E_BUILD_TIMEOUT (build, default 1800), E2E_TEST_TIMEOUT
# (the suite, default 180).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
INTEROP="$ROOT/tests/interop"
BUILD_TIMEOUT="${E2E_BUILD_TIMEOUT:-1800}"
TEST_TIMEOUT="${E2E_TEST_TIMEOUT:-180}"
HEALTHY_WITHIN=30
CHROMIUM=/usr/bin/chromium
SHOTS="${E2E_SCREENSHOTS:-$ROOT/target/e2e-screenshots}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/quire-e2e.XXXXXX")"
PIDS=()
cleanup() {
  local pid
  # The browser, if the suite left one (it writes its pid; Chromium leads its own group).
  if [ -s "$WORK/browser.pid" ]; then
    pid="$(cat "$WORK/browser.pid")"
    if kill -0 "$pid" 2>/dev/null; then kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; fi
  fi
  for pid in "${PIDS[@]}"; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

setup_failed() {
  echo "e2e: $1" >&2
  for log in "$WORK"/*.log; do
    if [ -s "$log" ]; then
      echo "--- last lines of $(basename "$log")" >&2
      tail -n 40 "$log" >&2
    fi
  done
  echo "0 passed, 1 failed"
  exit 1
}

command -v node >/dev/null || setup_failed "node is not installed"
command -v npm >/dev/null || setup_failed "npm is not installed"

# 1. Chromium from Debian, when missing.
if [ ! -x "$CHROMIUM" ]; then
  echo "e2e: $CHROMIUM missing, installing Debian's chromium"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then command -v sudo >/dev/null && SUDO="sudo -n"; fi
  export DEBIAN_FRONTEND=noninteractive
  { timeout 180 $SUDO apt-get update && timeout 420 $SUDO apt-get install -y chromium; } \
    >"$WORK/apt.log" 2>&1 || setup_failed "apt-get install chromium failed"
  [ -x "$CHROMIUM" ] || setup_failed "no $CHROMIUM after apt-get install chromium"
fi

# 2. playwright-core and the OP, exactly as locked.
for dir in "$HERE" "$INTEROP"; do
  (cd "$dir" && timeout 300 npm ci --no-audit --no-fund --prefer-offline --loglevel=error) >"$WORK/npm.log" 2>&1 \
    || { cat "$WORK/npm.log" >&2; setup_failed "npm ci in $dir failed"; }
done

# 3. quire, release build.
if [ -z "${QUIRE_BIN:-}" ]; then
  (cd "$ROOT" && timeout "$BUILD_TIMEOUT" cargo build --release --bin quire) || setup_failed "cargo build --release failed"
  QUIRE_BIN="$ROOT/target/release/quire"
fi
[ -x "$QUIRE_BIN" ] || setup_failed "no quire binary at $QUIRE_BIN"
QUIRE_BIN="$(cd "$(dirname "$QUIRE_BIN")" && pwd)/$(basename "$QUIRE_BIN")"
STARTED=$(date +%s)
echo "e2e: $($CHROMIUM --version 2>/dev/null | head -n 1), playwright-core $(node -p "require('$HERE/node_modules/playwright-core/package.json').version"), oidc-provider $(node -p "require('$INTEROP/node_modules/oidc-provider/package.json').version"), node $(node --version)"

# 4. Three free ports, all different.
free_ports() {
  node -e '
    const net = require("net");
    const open = () => new Promise((r) => { const s = net.createServer(); s.listen(0, "127.0.0.1", () => r(s)); });
    Promise.all([open(), open(), open()]).then((ss) => { console.log(ss.map((s) => s.address().port).join(" ")); ss.forEach((s) => s.close()); });'
}
read -r LOCAL_PORT OIDC_PORT OP_PORT < <(free_ports)

# The local-accounts quire is addressed as 127.0.0.1; the OIDC one as localhost and the
# OP as 127.0.0.1, so the trip to the OP and back is cross-site, as in production.
LOCAL_ORIGIN="http://127.0.0.1:$LOCAL_PORT"
OIDC_ORIGIN="http://localhost:$OIDC_PORT"
OP_ISSUER="http://127.0.0.1:$OP_PORT"
CLIENT_ID="quire-e2e"
CLIENT_SECRET="$(node -p 'require("crypto").randomBytes(24).toString("base64url")')"

# 5. Start the OP (tests/interop/op.mjs: devInteractions login and consent pages).
(
  cd "$INTEROP"
  export OP_PORT RP_ORIGIN="$OIDC_ORIGIN" CLIENT_ID CLIENT_SECRET
  export RP_BACKCHANNEL_ORIGIN="http://127.0.0.1:$OIDC_PORT"
  exec node op.mjs
) >"$WORK/op.log" 2>&1 &
PIDS+=($!)

# 6. Two quires, release profile, each with its own database folder and secret key.
for key in $(env | sed -n 's/^\(ROCKET_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$key"; done
start_quire() { # name port auth
  local name=$1 port=$2 auth=$3
  mkdir -p "$WORK/$name"
  (
    cd "$WORK/$name"
    export ROCKET_PROFILE=release
    export ROCKET_CONFIG=/nonexistent/Rocket.toml
    export ROCKET_ADDRESS=127.0.0.1
    export ROCKET_PORT="$port"
    export ROCKET_LOG_LEVEL=normal
    export ROCKET_CLI_COLORS=false
    ROCKET_SECRET_KEY="$(node -p 'require("crypto").randomBytes(64).toString("base64")')"
    export ROCKET_SECRET_KEY
    export ROCKET_DATABASES="{quire={url=\"sqlite://$WORK/$name/quire.sqlite?mode=rwc\"}}"
    export ROCKET_AUTH="$auth"
    exec "$QUIRE_BIN" serve
  ) >"$WORK/quire-$name.log" 2>&1 &
  PIDS+=($!)
}
# argon2 lowered for speed only; the production parameters are checked by the Rust tests.
ARGON='argon2={memory_kib=64,iterations=1}'
start_quire local "$LOCAL_PORT" "{providers=[\"local\"],signup=true,$ARGON}"
start_quire oidc "$OIDC_PORT" "{providers=[\"oidc\"],$ARGON,oidc={issuer=\"$OP_ISSUER\",client_id=\"$CLIENT_ID\",client_secret=\"$CLIENT_SECRET\",redirect_url=\"$OIDC_ORIGIN/oidc/callback\",display_name=\"Example IdP\",scopes=[\"openid\",\"email\",\"profile\",\"groups\"]}}"

# 7. Wait for all three to answer.
node -e '
  const [within, urls, ...pids] = process.argv.slice(1);
  const alive = (pid) => { try { process.kill(Number(pid), 0); return true; } catch { return false; } };
  const deadline = Date.now() + Number(within) * 1000;
  const ok = async (u) => { try { return (await fetch(u, { signal: AbortSignal.timeout(2000) })).status === 200; } catch { return false; } };
  (async () => {
    for (const u of urls.split(" ")) {
      while (!(await ok(u))) {
        if (!pids.every(alive)) { console.error("e2e: a process exited during start-up"); process.exit(1); }
        if (Date.now() > deadline) { console.error(`e2e: ${u} not answering 200 after ${within}s`); process.exit(1); }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  })();
' "$HEALTHY_WITHIN" "$OP_ISSUER/.well-known/openid-configuration http://127.0.0.1:$LOCAL_PORT/healthz http://127.0.0.1:$OIDC_PORT/healthz" "${PIDS[@]}" \
  || setup_failed "the OP or a quire did not start"

# 8. The suite. Playwright's temporary browser profile (a fresh --user-data-dir) goes
# under $WORK, removed on exit.
rm -rf "$SHOTS"
mkdir -p "$SHOTS" "$WORK/tmp"
set +e
TMPDIR="$WORK/tmp" CHROMIUM="$CHROMIUM" SHOTS="$SHOTS" BROWSER_PID_FILE="$WORK/browser.pid" \
  QUIRE_LOCAL="$LOCAL_ORIGIN" QUIRE_OIDC="$OIDC_ORIGIN" OP="$OP_ISSUER" \
  timeout -k 10 "$TEST_TIMEOUT" node "$HERE/suite.mjs" | tee "$WORK/suite.out"
STATUS=${PIPESTATUS[0]}
set -e
echo "e2e: suite ran in $(( $(date +%s) - STARTED ))s after the build"
if [ "$STATUS" -ne 0 ]; then
  for log in op.log quire-local.log quire-oidc.log; do
    echo "--- last lines of $log" >&2
    tail -n 40 "$WORK/$log" >&2
  done
  [ "$STATUS" -eq 124 ] && echo "e2e: the suite did not finish within ${TEST_TIMEOUT}s" >&2
fi
echo "screenshots: $SHOTS ($(find "$SHOTS" -name '*.png' | wc -l) files)"
# The summary is the last line, even when the suite died before printing it.
if grep -Eq '^[0-9]+ passed, [0-9]+ failed$' "$WORK/suite.out"; then
  summary="$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$WORK/suite.out" | tail -n 1)"
  [ "$STATUS" -ne 0 ] && [ "${summary##*, }" = "0 failed" ] && summary="${summary%%, *}, 1 failed"
else
  passed=$(grep -c '^ok ' "$WORK/suite.out" || true)
  failed=$(grep -c '^FAILED ' "$WORK/suite.out" || true)
  summary="$passed passed, $((failed + 1)) failed"
fi
echo "$summary"
[ "$STATUS" -eq 0 ]
