#!/usr/bin/env bash
# Soak: quire in release on loopback under a bounded mixed load, 200 connections.
#
#   bench/soak.sh                     # 10 minutes
#   SOAK_SECONDS=60 bench/soak.sh     # a short run (what .ci/run runs, last)
#
# Builds quire once (`cargo build --release --bin quire`; QUIRE_BIN=path skips it),
# installs wrk when missing (Debian's package), and starts quire on 127.0.0.1 with a
# temporary SQLite database, its own Rocket.toml and secret key, and the default
# configuration otherwise (production argon2id, page cache on). Makes SOAK_AUTHORS (10)
# authors and SOAK_LOGIN_ACCOUNTS (100) login accounts with `quire user add`, logs the
# authors in, writes SOAK_POSTS (200) posts through POST /posts (bench/seed.py) and
# uploads one image, then runs two wrk processes side by side for SOAK_SECONDS (600), in
# windows of SOAK_WINDOW (10) seconds:
#   - `wrk -t2 -c184`: new posts by the logged-in authors at SOAK_POST_RATE (2) a
#     second and uploads (multipart POST /media) at SOAK_UPLOAD_RATE (1) a second,
#     and otherwise reads of every public page (home, a second page, "Older posts",
#     a post, tags, a tag page and its feed, an author page and its feed, the feed,
#     the sitemap, robots.txt, an image, /healthz) and searches (bench/soak.lua);
#   - `wrk -t1 -c16`: logins (right password, round-robin over the login accounts).
# Writes come at a steady rate rather than as a share of the requests: a share grows
# with the throughput (3% of 400 req/s is 12 posts a second), and the blog then grows
# twentyfold in ten minutes, so a soak measures the growth instead of whether quire
# holds steady; the benchmark measures growth (100,000 posts) on its own.
# 16 connections for logins keep fewer than 100 login attempts in flight from this one
# address (quire's per-client throttle) and fewer than 6 on any account (the account
# throttle), so a 429 is never expected: every answer must be 2xx or 3xx, and every
# request answered within SOAK_TIMEOUT (5) seconds (wrk counts a slower one as a socket
# error); quire's log must show no error (a 5xx) while the load runs.
# After each window it prints req/s, p50 and p99 of both runs, the answers >= 400,
# socket errors and quire's peak RSS in the window (sampled every second). It fails
# when any answer was not 2xx/3xx or went unanswered, when those peaks after the
# warm-up (SOAK_WARMUP seconds, default a quarter of the run, at most 120) vary by more
# than SOAK_RSS_SLACK (10) percent (largest over smallest), when quire does not exit 0 on
# the SIGTERM that ends the run, or when a write that quire acknowledged (a post's 303 to
# its page, an upload's page naming its id) is missing from the database once quire has
# stopped.
# SOAK_KEEP=1 keeps the temporary folder (database, log, wrk output).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
DURATION="${SOAK_SECONDS:-600}"
WINDOW="${SOAK_WINDOW:-10}"
AUTHORS="${SOAK_AUTHORS:-10}"
LOGIN_ACCOUNTS="${SOAK_LOGIN_ACCOUNTS:-100}"
POSTS="${SOAK_POSTS:-200}"
POST_RATE="${SOAK_POST_RATE:-2}"
UPLOAD_RATE="${SOAK_UPLOAD_RATE:-1}"
TIMEOUT="${SOAK_TIMEOUT:-5}"
SLACK="${SOAK_RSS_SLACK:-10}"
WARMUP="${SOAK_WARMUP:-$(( DURATION / 4 < 120 ? DURATION / 4 : 120 ))}"
PASSWORD="soak password long enough"
MIXED_CONNECTIONS=184
LOGIN_CONNECTIONS=16

say() { echo "soak: $*" >&2; }
die() { say "$*"; exit 1; }

[ "$WINDOW" -ge 1 ] && [ "$DURATION" -ge "$WINDOW" ] || die "SOAK_SECONDS must be at least SOAK_WINDOW"
[ "$WARMUP" -lt "$DURATION" ] || die "SOAK_WARMUP must be shorter than SOAK_SECONDS"
if ! command -v wrk >/dev/null; then
  say "wrk missing, installing Debian's wrk"
  bash "$ROOT/tests/apt-install.sh" wrk || die "apt-get install wrk failed"
  command -v wrk >/dev/null || die "no wrk after apt-get install wrk"
fi
command -v python3 >/dev/null || die "python3 is needed (bench/seed.py, bench/soak.py)"
command -v curl >/dev/null || die "curl is needed"

if [ -z "${QUIRE_BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release --bin quire) || die "cargo build --release failed"
  QUIRE_BIN="$ROOT/target/release/quire"
fi
[ -x "$QUIRE_BIN" ] || die "no quire binary at $QUIRE_BIN"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/quire-soak.XXXXXX")"
PID=""
WRK_PIDS=()
QUIRE_STATUS=0
# SIGTERM, then quire's exit status: 0 once it drained what it had within its grace.
stop_quire() {
  if [ -n "$PID" ]; then
    kill "$PID" 2>/dev/null || true
    QUIRE_STATUS=0
    wait "$PID" 2>/dev/null || QUIRE_STATUS=$?
    PID=""
  fi
}
cleanup() {
  for p in "${WRK_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  stop_quire
  if [ "${SOAK_KEEP:-0}" = 1 ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
BASE="http://127.0.0.1:$PORT"
cat >"$WORK/Rocket.toml" <<EOF
[release]
address = "127.0.0.1"
port = $PORT
secret_key = "$(head -c 64 /dev/urandom | base64 -w0)"
log_level = "critical"

[release.databases.quire]
url = "sqlite://$WORK/quire.sqlite?mode=rwc"
EOF

# quire with only this configuration: no ROCKET_* from the caller's environment.
for var in $(env | grep -o '^ROCKET_[A-Z_]*' || true); do unset "$var"; done
export ROCKET_CONFIG="$WORK/Rocket.toml" ROCKET_PROFILE=release
quire() { (cd "$WORK" && exec "$QUIRE_BIN" "$@"); }

quire migrate >>"$WORK/quire.log" 2>&1 || die "quire migrate failed"
EMAILS_LUA=""
for i in $(seq 1 "$AUTHORS"); do
  printf '%s\n' "$PASSWORD" | quire user add --email "author$i@soak.example" --name "Author $i" \
    >>"$WORK/quire.log" 2>&1 || die "quire user add failed"
done
for i in $(seq 1 "$LOGIN_ACCOUNTS"); do
  printf '%s\n' "$PASSWORD" | quire user add --email "login$i@soak.example" --name "Login $i" \
    >>"$WORK/quire.log" 2>&1 || die "quire user add failed"
  EMAILS_LUA+="\"login$i@soak.example\","
done

cd "$WORK"
"$QUIRE_BIN" serve >>"$WORK/quire.log" 2>&1 &
PID=$!
cd - >/dev/null
for _ in $(seq 1 1000); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/healthz" || true)" = 200 ] && break
  kill -0 "$PID" 2>/dev/null || { tail -n 20 "$WORK/quire.log" >&2; die "quire exited"; }
  sleep 0.01
done

: >"$WORK/sessions"
WRITERS_LUA=""
for i in $(seq 1 "$AUTHORS"); do
  python3 "$HERE/seed.py" login "$BASE" "author$i@soak.example" "$PASSWORD" "$WORK/session$i"
  echo "$WORK/session$i" >>"$WORK/sessions"
  # shellcheck disable=SC1090
  . "$WORK/session$i"
  WRITERS_LUA+="{ [==[$COOKIE]==], [==[$TOKEN]==] },"
done
python3 "$HERE/seed.py" anon "$BASE" "$WORK/anon"
SEEDED="$(python3 "$HERE/seed.py" posts "$BASE" "$WORK/sessions" "$POSTS" 1)" || die "seeding posts failed"
say "seeding $POSTS posts: $SEEDED"
python3 "$HERE/soak.py" images "$WORK/images" 8
IMAGE_PATH="$(python3 "$HERE/soak.py" upload "$BASE" "$WORK/session1" "$WORK/images/1.png")"
POST_PATH="$(python3 "$HERE/seed.py" slug "$BASE")"
AUTHOR_PATH="$(python3 "$HERE/soak.py" author "$BASE" "$POST_PATH")"
OLDER_PATH="$(python3 "$HERE/seed.py" older "$BASE" /)"
IMAGES_LUA=""
for f in "$WORK"/images/*.png; do IMAGES_LUA+="[==[$f]==],"; done

mkdir -p "$WORK/ack"
# script MODE WINDOW_NUMBER: the wrk script of one run of one window.
script() {
  # shellcheck disable=SC1090
  . "$WORK/anon"
  {
    echo "MODE = \"$1\""
    echo "COOKIE = [==[$COOKIE]==]"
    echo "TOKEN = [==[$TOKEN]==]"
    echo "PASSWORD = [==[$PASSWORD]==]"
    echo "EMAILS = { $EMAILS_LUA }"
    echo "WRITERS = { $WRITERS_LUA }"
    echo "READS = { \"/\", \"/?page=2\", [==[$OLDER_PATH]==], [==[$POST_PATH]==], \"/tags\","
    echo "  \"/tags/rust\", \"/tags/rust/feed.xml\", [==[$AUTHOR_PATH]==], [==[$AUTHOR_PATH/feed.xml]==],"
    echo "  \"/feed.xml\", \"/sitemap.xml\", \"/robots.txt\", [==[$IMAGE_PATH]==], \"/healthz\" }"
    echo "SEARCHES = { \"/search?q=garden\", \"/search?q=river+stone\", \"/search?q=%22quiet+morning%22\","
    echo "  \"/search?q=lantern+or+meadow\", \"/search?q=soak+-winter\", \"/search?q=garden&page=2\" }"
    echo "IMAGES = { $IMAGES_LUA }"
    # Each of the mixed run's two threads writes half.
    echo "POST_RATE = $(awk -v r="$POST_RATE" 'BEGIN { print r / 2 }')"
    echo "UPLOAD_RATE = $(awk -v r="$UPLOAD_RATE" 'BEGIN { print r / 2 }')"
    echo "ACK = [==[$WORK/ack/ack-$1-$2]==]"
    cat "$HERE/soak.lua" "$HERE/done.lua"
  } >"$WORK/$1.lua"
}

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$PID/status"; }
WINDOWS=$(( DURATION / WINDOW ))
echo "quire: $QUIRE_BIN; $POSTS posts seeded; $(nproc) cores; $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "load: wrk -t2 -c$MIXED_CONNECTIONS ($POST_RATE new posts/s, $UPLOAD_RATE uploads/s; otherwise 91% reads of every public page, 9% searches)"
echo "      + wrk -t1 -c$LOGIN_CONNECTIONS (logins), ${WINDOWS} windows of ${WINDOW}s; peak RSS of each window after the warm-up (${WARMUP}s) within ${SLACK}%"
printf '%6s | %8s %8s %8s | %8s %8s | %6s %6s | %8s\n' \
  "t s" "req/s" "p50 ms" "p99 ms" "logins/s" "p99 ms" ">= 400" "socket" "peak RSS"
: >"$WORK/samples"
FAILED=0
# quire logs the cause of every 5xx, also of answers to requests wrk gave up at a
# window's end, which wrk cannot count: the log from here to the last window is read.
LOG_START=$(wc -l <"$WORK/quire.log")
for w in $(seq 1 "$WINDOWS"); do
  script mixed "$w"
  script login "$w"
  wrk -t2 -c"$MIXED_CONNECTIONS" -d"${WINDOW}s" --timeout "${TIMEOUT}s" --latency \
    -s "$WORK/mixed.lua" "$BASE/" >"$WORK/wrk-mixed-$w" 2>&1 &
  WRK_PIDS=($!)
  wrk -t1 -c"$LOGIN_CONNECTIONS" -d"${WINDOW}s" --timeout "${TIMEOUT}s" --latency \
    -s "$WORK/login.lua" "$BASE/login" >"$WORK/wrk-login-$w" 2>&1 &
  WRK_PIDS+=($!)
  # RSS every second while the window's load runs; the window's figure is its highest.
  peak=0
  while kill -0 "${WRK_PIDS[0]}" 2>/dev/null || kill -0 "${WRK_PIDS[1]}" 2>/dev/null; do
    kill -0 "$PID" 2>/dev/null || break
    now_kib=$(rss_kib)
    [ "$now_kib" -gt "$peak" ] && peak=$now_kib
    sleep 1
  done
  for p in "${WRK_PIDS[@]}"; do wait "$p" || die "wrk failed in window $w"; done
  WRK_PIDS=()
  kill -0 "$PID" 2>/dev/null || { tail -n 20 "$WORK/quire.log" >&2; die "quire exited"; }
  [ "$peak" -gt 0 ] || peak=$(rss_kib)
  rss=$(( peak / 1024 ))
  read -r _ rps p50 p99 err sock <<<"$(grep '^RESULT ' "$WORK/wrk-mixed-$w")" \
    || die "no result from wrk in window $w: $(cat "$WORK/wrk-mixed-$w")"
  read -r _ lrps _ lp99 lerr lsock <<<"$(grep '^RESULT ' "$WORK/wrk-login-$w")" \
    || die "no result from the login wrk in window $w: $(cat "$WORK/wrk-login-$w")"
  t=$(( w * WINDOW ))
  printf '%6d | %8.0f %8.2f %8.2f | %8.0f %8.2f | %6d %6d | %8d\n' \
    "$t" "$rps" "$p50" "$p99" "$lrps" "$lp99" $(( err + lerr )) $(( sock + lsock )) "$rss"
  echo "$t $rss" >>"$WORK/samples"
  if [ $(( err + lerr + sock + lsock )) -gt 0 ]; then FAILED=1; fi
done
LOG_END=$(wc -l <"$WORK/quire.log")
stop_quire

echo
codes="$(cat "$WORK"/ack/ack-* | awk '$1 == "status" {print $2}' | sort | uniq -c | awk '{printf "%s x%s ", $2, $1}')"
if [ "$FAILED" = 1 ]; then
  say "FAIL: answers that were not 2xx/3xx or went unanswered (statuses: ${codes:-none; socket errors only})"
fi
SERVER_ERRORS=0
if [ "$LOG_END" -gt "$LOG_START" ]; then
  SERVER_ERRORS=$(sed -n "$((LOG_START + 1)),${LOG_END}p" "$WORK/quire.log" | grep -c '^Error' || true)
fi
if [ "$SERVER_ERRORS" -gt 0 ]; then
  say "FAIL: quire logged $SERVER_ERRORS errors during the load, first:"
  sed -n "$((LOG_START + 1)),${LOG_END}p" "$WORK/quire.log" | grep '^Error' | head -n 3 >&2
  FAILED=1
fi
if ! awk -v warm="$WARMUP" -v slack="$SLACK" '
    $1 > warm { if (min == "" || $2 < min) min = $2; if ($2 > max) max = $2; n++ }
    END {
      if (n == 0) { print "no RSS sample after the warm-up"; exit 1 }
      spread = 100 * (max - min) / min
      printf "peak RSS of each window after the warm-up: %d to %d MiB over %d windows (%.1f%%, at most %d%% allowed)\n", min, max, n, spread, slack
      exit spread > slack }' "$WORK/samples"; then
  say "FAIL: RSS was not flat after the warm-up"
  FAILED=1
fi
echo "quire exited $QUIRE_STATUS after SIGTERM"
if [ "$QUIRE_STATUS" != 0 ]; then
  say "FAIL: quire exited $QUIRE_STATUS after SIGTERM (not drained within shutdown.grace)"
  FAILED=1
fi
python3 "$HERE/soak.py" check "$WORK/quire.sqlite" "$WORK/ack" || FAILED=1
if [ "$FAILED" = 1 ]; then
  tail -n 20 "$WORK/quire.log" >&2
  die "failed"
fi
echo "soak passed"
