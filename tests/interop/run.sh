#!/usr/bin/env bash
# Interop test: quire against a real, certified OpenID Provider (node `oidc-provider`,
# pinned in package.json / package-lock.json), both on loopback.
#
#   tests/interop/run.sh
#
# Installs the OP (npm ci), builds quire (debug; QUIRE_BIN=path skips the build), starts
# the OP and `quire serve` on free ports, runs driver.mjs (login through the OP's own
# login and consent pages, a post, RP-initiated logout, logout at the OP with
# back-channel logout, `quire doctor`), and stops both on exit. Ends with the line
# "N passed, N failed"; exits non-zero on any failure.
#
# Time limits (seconds): INTEROP_BUILD_TIMEOUT (build, default 1800),
# INTEROP_TEST_TIMEOUT (start-up and driver, default 120).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BUILD_TIMEOUT="${INTEROP_BUILD_TIMEOUT:-1800}"
TEST_TIMEOUT="${INTEROP_TEST_TIMEOUT:-120}"
HEALTHY_WITHIN=30

WORK="$(mktemp -d "${TMPDIR:-/tmp}/quire-interop.XXXXXX")"
OP_PID=""
QUIRE_PID=""
cleanup() {
  local pid
  for pid in "$QUIRE_PID" "$OP_PID"; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A failure before the driver runs still ends in the summary line.
setup_failed() {
  echo "interop: $1" >&2
  for log in "$WORK/op.log" "$WORK/quire.log"; do
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

# 1. The OP, exactly as locked.
(cd "$HERE" && timeout 300 npm ci --no-audit --no-fund --prefer-offline --loglevel=error >"$WORK/npm.log" 2>&1) \
  || { cat "$WORK/npm.log" >&2; setup_failed "npm ci failed"; }
echo "interop: oidc-provider $(node -p "require('$HERE/node_modules/oidc-provider/package.json').version"), node $(node --version)"

# 2. quire.
if [ -z "${QUIRE_BIN:-}" ]; then
  (cd "$ROOT" && timeout "$BUILD_TIMEOUT" cargo build --bin quire) || setup_failed "cargo build failed"
  QUIRE_BIN="$ROOT/target/debug/quire"
fi
[ -x "$QUIRE_BIN" ] || setup_failed "no quire binary at $QUIRE_BIN"
QUIRE_BIN="$(cd "$(dirname "$QUIRE_BIN")" && pwd)/$(basename "$QUIRE_BIN")"

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
OP_PORT="$(free_port)"
QUIRE_PORT="$(free_port)"
while [ "$QUIRE_PORT" = "$OP_PORT" ]; do QUIRE_PORT="$(free_port)"; done

# quire is addressed as localhost, the OP as 127.0.0.1: two sites, as in production,
# so the return from the OP is a cross-site navigation (SameSite matters).
OP_ISSUER="http://127.0.0.1:$OP_PORT"
QUIRE_ORIGIN="http://localhost:$QUIRE_PORT"
CLIENT_ID="quire-interop"
CLIENT_SECRET="$(node -p 'require("crypto").randomBytes(24).toString("base64url")')"
DISPLAY_NAME="Interop OP"

# 3. Start both.
(
  cd "$HERE"
  export OP_PORT RP_ORIGIN="$QUIRE_ORIGIN" CLIENT_ID CLIENT_SECRET
  # Server to server: straight to the address quire listens on.
  export RP_BACKCHANNEL_ORIGIN="http://127.0.0.1:$QUIRE_PORT"
  exec node op.mjs
) >"$WORK/op.log" 2>&1 &
OP_PID=$!

for key in $(env | sed -n 's/^\(ROCKET_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$key"; done
export ROCKET_PROFILE=debug
export ROCKET_CONFIG=/nonexistent/Rocket.toml
export ROCKET_ADDRESS=127.0.0.1
export ROCKET_PORT="$QUIRE_PORT"
export ROCKET_LOG_LEVEL=normal
export ROCKET_CLI_COLORS=false
export ROCKET_SECRET_KEY="$(node -p 'require("crypto").randomBytes(64).toString("base64")')"
export ROCKET_DATABASES="{quire={url=\"sqlite://$WORK/quire.sqlite?mode=rwc\"}}"
export ROCKET_AUTH="{providers=[\"local\",\"oidc\"],argon2={memory_kib=64,iterations=1},oidc={issuer=\"$OP_ISSUER\",client_id=\"$CLIENT_ID\",client_secret=\"$CLIENT_SECRET\",redirect_url=\"$QUIRE_ORIGIN/oidc/callback\",display_name=\"$DISPLAY_NAME\",scopes=[\"openid\",\"email\",\"profile\",\"groups\"],allowed_groups=[\"writers\"]}}"

(cd "$WORK" && exec "$QUIRE_BIN" serve) >"$WORK/quire.log" 2>&1 &
QUIRE_PID=$!

# 4. Wait for both to answer.
node -e '
  const [op, quire, within, ...pids] = process.argv.slice(1);
  const alive = (pid) => { try { process.kill(Number(pid), 0); return true; } catch { return false; } };
  const deadline = Date.now() + Number(within) * 1000;
  const ok = async (u) => { try { return (await fetch(u, { signal: AbortSignal.timeout(2000) })).status === 200; } catch { return false; } };
  (async () => {
    for (const u of [`${op}/.well-known/openid-configuration`, `${quire}/healthz`]) {
      while (!(await ok(u))) {
        if (!pids.every(alive)) { console.error("interop: a process exited during start-up"); process.exit(1); }
        if (Date.now() > deadline) { console.error(`interop: ${u} not answering 200 after ${within}s`); process.exit(1); }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  })();
' "$OP_ISSUER" "http://127.0.0.1:$QUIRE_PORT" "$HEALTHY_WITHIN" "$OP_PID" "$QUIRE_PID" \
  || setup_failed "the OP or quire did not start"

# 5. The driver.
set +e
QUIRE="$QUIRE_ORIGIN" OP="$OP_ISSUER" CLIENT_ID="$CLIENT_ID" DISPLAY_NAME="$DISPLAY_NAME" QUIRE_BIN="$QUIRE_BIN" \
  timeout "$TEST_TIMEOUT" node "$HERE/driver.mjs" | tee "$WORK/driver.out"
STATUS=${PIPESTATUS[0]}
set -e
if [ "$STATUS" -ne 0 ]; then
  for log in op.log quire.log; do
    echo "--- last lines of $log" >&2
    tail -n 60 "$WORK/$log" >&2
  done
  if [ "$STATUS" -eq 124 ]; then
    echo "interop: the driver did not finish within ${TEST_TIMEOUT}s" >&2
  fi
  # The summary must be the last line even when the driver died before printing it.
  if ! tail -n 1 "$WORK/driver.out" | grep -Eq '^[0-9]+ passed, [0-9]+ failed$'; then
    passed=$(grep -c '^ok ' "$WORK/driver.out" || true)
    failed=$(grep -c '^FAILED ' "$WORK/driver.out" || true)
    echo "$passed passed, $((failed + 1)) failed"
  else
    tail -n 1 "$WORK/driver.out"
  fi
  exit 1
fi
