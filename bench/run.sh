#!/usr/bin/env bash
# Benchmark: quire in release on loopback, measured with wrk (Debian's package).
#
#   bench/run.sh                      # 10 authors, 1,000 posts, 10 s a run
#   BENCH_SECONDS=5 bench/run.sh      # shorter runs
#   BENCH_DEEP=1 bench/run.sh         # then seed to 100,000 posts and measure again
#
# Builds quire once (`cargo build --release --bin quire`; QUIRE_BIN=path skips it) and
# prints the binary's size, builds the seeding and hash-timing helpers (examples/seed.rs,
# examples/hash_time.rs; QUIRE_EXAMPLES=folder skips it), installs wrk when missing (apt-get, with sudo -n when not
# root), and starts quire on a temporary SQLite database with its own Rocket.toml and
# secret key in a temporary folder (default configuration otherwise: production argon2id).
# Seeds BENCH_AUTHORS authors (`quire user add`) and BENCH_POSTS posts of about 2 KB,
# tagged, through quire's own code (examples/seed.rs: the renderer, db::posts::insert and
# db::tags, what POST /posts runs, without HTTP), a minute apart in the past. Then runs `wrk -t2 -c32 -d BENCH_SECONDS` on /healthz (the
# ceiling), /, a post page, a tag page, /feed.xml, /search?q=garden (a word in every
# post), the login POST (valid CSRF cookie and token, right password, bench/forms.lua)
# and a mixed run (80% reads of those pages, 15% logins, 5% new posts by a logged-in
# author), sampling quire's peak RSS during each run (VmHWM, reset before each run
# through /proc/PID/clear_refs; polled VmRSS where that is refused). Prints a table:
# req/s, p50, p99, peak RSS, answers >= 400, socket errors (a request unanswered after
# BENCH_TIMEOUT seconds, default 10, is one), req/s as a share of /healthz's. Each run
# starts once quire is idle again.
# Logins go round-robin over BENCH_LOGIN_ACCOUNTS (default 32) accounts made for them:
# quire's per-account throttle refuses a sixth attempt in flight on one account (429),
# which 32 connections on 10 accounts would reach.
# Then a login flood, in BENCH_FLOOD_ROUNDS (3) rounds: `wrk -t2 -c64` on the login
# POST while a second wrk (-t1 -c2, 20 ms between requests) measures GET / beside it;
# prints login req/s, the single-hash time (examples/hash_time.rs: one verification
# through quire's hashing workers, the mean of a run just before the round's flood and
# one just after), login req/s against cores / that time, GET /'s p99 meanwhile and
# quire's peak RSS, for the round with the median ratio and then for each round.
# Last, restarts quire on the seeded database and times start-up to the first 200 on
# /healthz.
#
# BENCH_DEEP=1 adds a second phase: stops quire, seeds up to BENCH_DEEP_POSTS (default
# 100,000) posts the same way (its time is printed), times start-up on that database,
# measures /,
# /?page=5000, the keyset page that "Older posts" links reach for page 5000, a tag page
# and search, each beside its figure at 1,000 posts.
# BENCH_DEEP_PAGE (default 5000) names the deep page.
# BENCH_PAGE_CACHE=0 turns the page cache off, so every page is rendered.
# BENCH_KEEP=1 keeps the temporary folder (database, log).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
POSTS="${BENCH_POSTS:-1000}"
AUTHORS="${BENCH_AUTHORS:-10}"
DURATION="${BENCH_SECONDS:-10}"
LOGIN_ACCOUNTS="${BENCH_LOGIN_ACCOUNTS:-32}"
TIMEOUT="${BENCH_TIMEOUT:-10}"
DEEP="${BENCH_DEEP:-0}"
DEEP_POSTS="${BENCH_DEEP_POSTS:-100000}"
DEEP_PAGE="${BENCH_DEEP_PAGE:-5000}"
PASSWORD="bench password long enough"

say() { echo "bench: $*" >&2; }
die() { say "$*"; exit 1; }

# wrk from Debian, when missing.
if ! command -v wrk >/dev/null; then
  say "wrk missing, installing Debian's wrk"
  bash "$ROOT/tests/apt-install.sh" wrk || die "apt-get install wrk failed"
  command -v wrk >/dev/null || die "no wrk after apt-get install wrk"
fi
command -v python3 >/dev/null || die "python3 is needed (bench/seed.py)"
command -v curl >/dev/null || die "curl is needed"

if [ -z "${QUIRE_BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release --bin quire) || die "cargo build --release failed"
  QUIRE_BIN="$ROOT/target/release/quire"
fi
[ -x "$QUIRE_BIN" ] || die "no quire binary at $QUIRE_BIN"
if [ -z "${QUIRE_EXAMPLES:-}" ]; then
  (cd "$ROOT" && cargo build --release --example seed --example hash_time) \
    || die "cargo build --release --example seed --example hash_time failed"
  QUIRE_EXAMPLES="$ROOT/target/release/examples"
fi
[ -x "$QUIRE_EXAMPLES/seed" ] || die "no seed helper in $QUIRE_EXAMPLES"
echo "binary: $QUIRE_BIN, $(stat -c %s "$QUIRE_BIN") bytes ($(( $(stat -c %s "$QUIRE_BIN") / 1048576 )) MiB)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/quire-bench.XXXXXX")"
PID=""
stop_quire() {
  if [ -n "$PID" ]; then
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    PID=""
  fi
}
cleanup() {
  stop_quire
  if [ "${BENCH_KEEP:-0}" = 1 ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
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
# BENCH_PAGE_CACHE=0: every page rendered, to see what a render costs and how it scales.
if [ "${BENCH_PAGE_CACHE:-1}" = 0 ]; then
  printf '\n[release.page_cache]\nenabled = false\n' >>"$WORK/Rocket.toml"
fi

# quire with only this configuration: no ROCKET_* from the caller's environment.
for var in $(env | grep -o '^ROCKET_[A-Z_]*' || true); do unset "$var"; done
export ROCKET_CONFIG="$WORK/Rocket.toml" ROCKET_PROFILE=release
quire() { (cd "$WORK" && exec "$QUIRE_BIN" "$@"); }
# seed TOTAL START: posts through quire's own code, round-robin over the authors.
seed() {
  local emails=()
  for i in $(seq 1 "$AUTHORS"); do emails+=("author$i@bench.example"); done
  (cd "$WORK" && "$QUIRE_EXAMPLES/seed" "$1" "$2" "${emails[@]}") || die "seeding failed"
}
# PID is quire's own (exec), so that stop_quire ends it.
start_quire() {
  cd "$WORK"
  "$QUIRE_BIN" serve >>"$WORK/quire.log" 2>&1 &
  PID=$!
  cd - >/dev/null
}
# Waits for the first 200 on /healthz; prints the milliseconds since $1 (date +%s%N).
wait_healthy() {
  local t0=$1
  for _ in $(seq 1 3000); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/healthz" || true)" = 200 ]; then
      echo $(( ($(date +%s%N) - t0) / 1000000 ))
      return 0
    fi
    kill -0 "$PID" 2>/dev/null || { tail -n 20 "$WORK/quire.log" >&2; die "quire exited"; }
    sleep 0.002
  done
  die "quire did not answer /healthz"
}
# Restarts quire; sets STARTUP_MS (not in a subshell: PID must stay this shell's).
startup() {
  stop_quire
  local t0
  t0=$(date +%s%N)
  start_quire
  wait_healthy "$t0" >"$WORK/startup"
  STARTUP_MS=$(cat "$WORK/startup")
}

# Accounts through the CLI (signup over HTTP is limited per network), then sessions
# through the login form.
quire migrate >>"$WORK/quire.log" 2>&1 || die "quire migrate failed"
: >"$WORK/sessions"
EMAILS_LUA=""
for i in $(seq 1 "$AUTHORS"); do
  printf '%s\n' "$PASSWORD" | quire user add --email "author$i@bench.example" --name "Author $i" \
    >>"$WORK/quire.log" 2>&1 || die "quire user add failed"
done
# Accounts the login and mixed runs log in to, round-robin: quire refuses a sixth login
# attempt in flight on one account (429), so 32 connections need many accounts.
for i in $(seq 1 "$LOGIN_ACCOUNTS"); do
  printf '%s\n' "$PASSWORD" | quire user add --email "login$i@bench.example" --name "Login $i" \
    >>"$WORK/quire.log" 2>&1 || die "quire user add failed"
  EMAILS_LUA+="\"login$i@bench.example\","
done
echo "seeding $AUTHORS authors, $POSTS posts: $(seed "$POSTS" 1)"
start_quire
wait_healthy "$(date +%s%N)" >/dev/null
for i in $(seq 1 "$AUTHORS"); do
  python3 "$HERE/seed.py" login "$BASE" "author$i@bench.example" "$PASSWORD" "$WORK/session$i"
  echo "$WORK/session$i" >>"$WORK/sessions"
done
python3 "$HERE/seed.py" anon "$BASE" "$WORK/anon"

POST_PATH="$(python3 "$HERE/seed.py" slug "$BASE")"
TAG_PATH="/tags/rust"
SEARCH_PATH="/search?q=garden"

# wrk scripts: GETs report only; forms.lua after the values it needs. The probe beside
# the login flood waits 20 ms between requests (about 100 req/s on 2 connections): a
# reader, not a second flood taking the cores from the logins.
cp "$HERE/done.lua" "$WORK/get.lua"
{ echo 'function delay() return 20 end'; cat "$HERE/done.lua"; } >"$WORK/probe.lua"
form_script() {
  local mode=$1 out=$2
  # shellcheck disable=SC1090
  . "$WORK/anon"
  local anon_cookie=$COOKIE anon_token=$TOKEN
  # shellcheck disable=SC1090
  . "$WORK/session1"
  {
    echo "COOKIE = [==[$anon_cookie]==]"
    echo "TOKEN = [==[$anon_token]==]"
    echo "WCOOKIE = [==[$COOKIE]==]"
    echo "WTOKEN = [==[$TOKEN]==]"
    echo "PASSWORD = [==[$PASSWORD]==]"
    echo "EMAILS = { $EMAILS_LUA }"
    echo "READS = { \"/\", [==[$POST_PATH]==], \"$TAG_PATH\", \"/feed.xml\", [==[$SEARCH_PATH]==] }"
    echo "MODE = \"$mode\""
    cat "$HERE/forms.lua" "$HERE/done.lua"
  } >"$out"
}
form_script login "$WORK/login.lua"
form_script mixed "$WORK/mixed.lua"

# Waits (up to 60 s) until quire is idle, using under 5% of a core over half a second:
# requests a run left in flight (a slow search) must not weigh on the next run.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
settle() {
  local before after
  for _ in $(seq 1 120); do
    before=$(cpu_ticks)
    sleep 0.5
    after=$(cpu_ticks)
    [ $((after - before)) -le 2 ] && return 0
  done
  say "quire still busy after 60 s"
}

# measure NAME PATH SCRIPT: one wrk run; appends "NAME PATH req/s p50 p99 rss errors"
# to $WORK/results.
measure() {
  local name=$1 path=$2 script=$3 out peak poller reset=0
  settle
  echo 5 2>/dev/null >"/proc/$PID/clear_refs" && reset=1
  : >"$WORK/rss"
  (while kill -0 "$PID" 2>/dev/null; do
     awk '/^VmRSS/ {print $2}' "/proc/$PID/status" >>"$WORK/rss" 2>/dev/null || true
     sleep 0.05
   done) &
  poller=$!
  out="$(wrk -t2 -c32 -d"${DURATION}s" --timeout "${TIMEOUT}s" --latency -s "$script" "$BASE$path")" || die "wrk failed on $path"
  kill "$poller" 2>/dev/null || true
  wait "$poller" 2>/dev/null || true
  if [ "$reset" = 1 ]; then
    peak=$(awk '/^VmHWM/ {print $2}' "/proc/$PID/status")
  else
    peak=$(sort -n "$WORK/rss" | tail -n 1)
  fi
  local line
  line="$(grep '^RESULT ' <<<"$out")" || { echo "$out" >&2; die "no result from wrk on $path"; }
  read -r _ rps p50 p99 http_errors socket_errors <<<"$line"
  echo "$name $path $rps $p50 $p99 $(( ${peak:-0} / 1024 )) $http_errors $socket_errors" >>"$WORK/results"
  say "$name: $rps req/s"
}

# table FILE CEILING_REQS: the results as a table.
table() {
  awk -v ceiling="$2" '
    BEGIN { printf "| %-8s | %-34s | %8s | %7s | %7s | %8s | %6s | %6s | %8s |\n", "run", "path", "req/s", "p50 ms", "p99 ms", "peak RSS", ">= 400", "socket", "/healthz";
            printf "|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n", "----------", "------------------------------------", "---------:", "--------:", "--------:", "---------:", "-------:", "-------:", "---------:" }
    { p = $2; if (length(p) > 34) p = substr(p, 1, 31) "...";
      printf "| %-8s | %-34s | %8.0f | %7.2f | %7.2f | %4d MiB | %6d | %6d | %7.0f%% |\n", $1, p, $3, $4, $5, $6, $7, $8, 100 * $3 / ceiling }' "$1"
}

: >"$WORK/results"
measure healthz /healthz "$WORK/get.lua"
measure home / "$WORK/get.lua"
measure post "$POST_PATH" "$WORK/get.lua"
measure tag "$TAG_PATH" "$WORK/get.lua"
measure feed /feed.xml "$WORK/get.lua"
measure search "$SEARCH_PATH" "$WORK/get.lua"
measure login "/login" "$WORK/login.lua"
measure mixed / "$WORK/mixed.lua"
CEILING=$(awk '$1 == "healthz" {print $3}' "$WORK/results")

echo
echo "$POSTS posts, $AUTHORS authors; wrk -t2 -c32 -d${DURATION}s on $(nproc) cores; $(date -u '+%Y-%m-%d %H:%M UTC')"
table "$WORK/results" "$CEILING"
echo "mixed: 80% reads (/, a post, a tag, /feed.xml, search), 15% logins, 5% new posts"

# Login flood: 64 connections logging in, GET / measured beside them, in
# BENCH_FLOOD_ROUNDS (default 3) rounds. Each round takes the single-hash time just
# before and just after its flood, in the same conditions, and averages the two: on a
# shared machine the CPU's speed drifts within minutes, and one sample taken at a fast
# or slow moment moved the ratio by a fifth. The round with the median ratio is
# reported, and every round is listed.
ROUNDS="${BENCH_FLOOD_ROUNDS:-3}"
CORES=$(nproc)
echo 5 2>/dev/null >"/proc/$PID/clear_refs" || say "VmHWM cannot be reset: peak RSS is since start"
: >"$WORK/rounds"
for round in $(seq 1 "$ROUNDS"); do
  settle
  HASH_BEFORE="$(cd "$WORK" && "$QUIRE_EXAMPLES/hash_time")" || die "hash_time failed"
  wrk -t1 -c2 -d"${DURATION}s" --timeout "${TIMEOUT}s" --latency -s "$WORK/probe.lua" "$BASE/" \
    >"$WORK/flood-home" 2>&1 &
  HOME_WRK=$!
  FLOOD="$(wrk -t2 -c64 -d"${DURATION}s" --timeout "${TIMEOUT}s" --latency -s "$WORK/login.lua" "$BASE/login")" \
    || die "wrk failed on the login flood"
  wait "$HOME_WRK" || die "wrk failed on / during the login flood"
  settle
  HASH_AFTER="$(cd "$WORK" && "$QUIRE_EXAMPLES/hash_time")" || die "hash_time failed"
  read -r _ FLOOD_RPS _ FLOOD_P99 FLOOD_ERR FLOOD_SOCK <<<"$(grep '^RESULT ' <<<"$FLOOD")"
  read -r _ HOME_RPS _ HOME_P99 HOME_ERR _ <<<"$(grep '^RESULT ' "$WORK/flood-home")"
  # ratio round logins/s p99 errors sockets hash-before hash-after GET/-req/s GET/-p99 GET/-errors
  awk -v r="$FLOOD_RPS" -v hb="$HASH_BEFORE" -v ha="$HASH_AFTER" -v c="$CORES" -v n="$round" \
    -v rest="$FLOOD_P99 $FLOOD_ERR $FLOOD_SOCK $HASH_BEFORE $HASH_AFTER $HOME_RPS $HOME_P99 $HOME_ERR" \
    'BEGIN { printf "%.1f %d %s %s\n", 100 * r / (c * 2000 / (hb + ha)), n, r, rest }' >>"$WORK/rounds"
done
FLOOD_PEAK=$(( $(awk '/^VmHWM/ {print $2}' "/proc/$PID/status") / 1024 ))
sort -n "$WORK/rounds" >"$WORK/rounds.sorted"
read -r _ _ FLOOD_RPS FLOOD_P99 FLOOD_ERR FLOOD_SOCK HASH_BEFORE HASH_AFTER HOME_RPS HOME_P99 HOME_ERR \
  <<<"$(sed -n "$(( (ROUNDS + 1) / 2 ))p" "$WORK/rounds.sorted")"
HASH_MS="$(awk -v a="$HASH_BEFORE" -v b="$HASH_AFTER" 'BEGIN { printf "%.2f", (a + b) / 2 }')"
echo "login flood (wrk -t2 -c64 on the login POST, ${DURATION}s, the median of $ROUNDS rounds): $FLOOD_RPS logins/s (p99 $FLOOD_P99 ms, $FLOOD_ERR answers >= 400, $FLOOD_SOCK socket errors), peak RSS over all rounds $FLOOD_PEAK MiB"
awk -v r="$FLOOD_RPS" -v h="$HASH_MS" -v hb="$HASH_BEFORE" -v ha="$HASH_AFTER" -v c="$CORES" 'BEGIN {
  printf "  one argon2 verification: %.1f ms (%s before the flood, %s after); %d cores / that = %.0f/s; logins reach %.0f%% of it\n", h, hb, ha, c, c * 1000 / h, 100 * r / (c * 1000 / h) }'
echo "  GET / meanwhile (wrk -t1 -c2, 20 ms between requests): $HOME_RPS req/s, p99 $HOME_P99 ms, $HOME_ERR answers >= 400"
awk '{ printf "  round %d: %s logins/s, hash %s ms before and %s after, %s%%; GET / p99 %s ms\n", $2, $3, $7, $8, $1, $10 }' "$WORK/rounds"
startup
echo "start-up to the first 200 on /healthz with $POSTS posts: $STARTUP_MS ms"

[ "$DEEP" = 1 ] || exit 0

# Second phase: the same database grown to DEEP_POSTS posts.
MORE=$(( DEEP_POSTS - POSTS ))
stop_quire
if [ "$MORE" -gt 0 ]; then
  echo "seeding $MORE more posts: $(seed "$MORE" $((POSTS + 1)))"
fi
startup
echo "start-up to the first 200 on /healthz with $DEEP_POSTS posts: $STARTUP_MS ms"
KEYSET_PATH="$(python3 "$HERE/seed.py" older "$BASE" "/?page=$((DEEP_PAGE - 1))")"
mv "$WORK/results" "$WORK/results-small"
: >"$WORK/results"
measure healthz /healthz "$WORK/get.lua"
measure home / "$WORK/get.lua"
measure "page$DEEP_PAGE" "/?page=$DEEP_PAGE" "$WORK/get.lua"
measure keyset "$KEYSET_PATH" "$WORK/get.lua"
measure tag "$TAG_PATH" "$WORK/get.lua"
measure search "$SEARCH_PATH" "$WORK/get.lua"
CEILING=$(awk '$1 == "healthz" {print $3}' "$WORK/results")
echo
echo "$DEEP_POSTS posts; wrk -t2 -c32 -d${DURATION}s; $(date -u '+%Y-%m-%d %H:%M UTC')"
table "$WORK/results" "$CEILING"
echo
echo "time per request at $DEEP_POSTS posts against $POSTS posts (1 / req/s; home's at $POSTS posts for the deep pages):"
awk 'NR == FNR { small[$1] = $3; next }
     { base = ($1 ~ /^page/ || $1 == "keyset") ? small["home"] : small[$1];
       if (base > 0 && $3 > 0) printf "  %-10s %6.2fx\n", $1, base / $3;
       else if (base > 0) printf "  %-10s no answer within the run\n", $1 }' "$WORK/results-small" "$WORK/results"
echo "binary: $(stat -c %s "$QUIRE_BIN") bytes"
