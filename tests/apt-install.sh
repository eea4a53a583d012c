#!/usr/bin/env bash
# Installs Debian packages for the test harnesses and the benchmark (chromium, wrk):
# apt-get through `sudo -n` when not root, with time limits; on failure prints the end
# of apt's output and exits non-zero, so the caller can say what it was for.
set -uo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then command -v sudo >/dev/null && SUDO="sudo -n"; fi
export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
{ timeout 180 $SUDO apt-get update && timeout 420 $SUDO apt-get install -y "$@"; } >"$log" 2>&1 \
  || { tail -n 40 "$log" >&2; rm -f "$log"; exit 1; }
rm -f "$log"
