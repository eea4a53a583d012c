# Shell side of the Node harnesses (tests/interop/run.sh, tests/e2e/run.sh), sourced by
# both after setting NAME (the harness's name, as its messages begin) and ROOT (the
# repository). What runs in Node (processes, checks, the summary) is in support.mjs.

# A failure before the harness runs still ends in the summary line.
setup_failed() {
  echo "$NAME: $1" >&2
  echo "0 passed, 1 failed"
  exit 1
}

need_node() {
  command -v node >/dev/null || setup_failed "node is not installed"
  command -v npm >/dev/null || setup_failed "npm is not installed"
}

# npm ci in DIR: exactly what its package-lock.json pins.
npm_ci() {
  local dir=$1 log
  log="$(mktemp)"
  (cd "$dir" && timeout 300 npm ci --no-audit --no-fund --prefer-offline --loglevel=error) >"$log" 2>&1 \
    || { cat "$log" >&2; rm -f "$log"; setup_failed "npm ci in $dir failed"; }
  rm -f "$log"
}

# aiosmtpd for the SMTP server of tests/mail (smtp_server.py), by the one script that
# installs it (pinned, from PyPI, only when missing).
need_smtp_server() {
  local log
  log="$(mktemp)"
  timeout 300 bash "$ROOT/tests/mail/install.sh" >"$log" 2>&1 \
    || { cat "$log" >&2; rm -f "$log"; setup_failed "tests/mail/install.sh could not install aiosmtpd"; }
  rm -f "$log"
}

# Sets QUIRE_BIN to an absolute path: as given, or a release build made now (within
# BUILD_TIMEOUT seconds, default 1800). CI builds once and passes it to both harnesses.
quire_bin() {
  if [ -z "${QUIRE_BIN:-}" ]; then
    (cd "$ROOT" && timeout "${BUILD_TIMEOUT:-1800}" cargo build --release --bin quire) \
      || setup_failed "cargo build --release failed"
    QUIRE_BIN="$ROOT/target/release/quire"
  fi
  [ -x "$QUIRE_BIN" ] || setup_failed "no quire binary at $QUIRE_BIN"
  QUIRE_BIN="$(cd "$(dirname "$QUIRE_BIN")" && pwd)/$(basename "$QUIRE_BIN")"
  export QUIRE_BIN
}

# Runs the harness SCRIPT with HARNESS_TIMEOUT (seconds) for it to finish by itself; a
# little later it is killed. The last line is "N passed, N failed" even when the harness
# died before printing it; the status is the harness's (non-zero on any failure).
run_harness() {
  local script=$1 out status passed failed
  out="$(mktemp)"
  set +e
  timeout -k 10 "$((HARNESS_TIMEOUT + 30))" node "$script" | tee "$out"
  status=${PIPESTATUS[0]}
  set -e
  if ! tail -n 1 "$out" | grep -Eq '^[0-9]+ passed, [0-9]+ failed$'; then
    [ "$status" -eq 124 ] && echo "$NAME: killed after $((HARNESS_TIMEOUT + 30))s" >&2
    passed=$(grep -c '^ok ' "$out" || true)
    failed=$(grep -c '^FAILED ' "$out" || true)
    echo "$passed passed, $((failed + 1)) failed"
    [ "$status" -eq 0 ] && status=1
  fi
  rm -f "$out"
  return "$status"
}
