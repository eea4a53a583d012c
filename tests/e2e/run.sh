#!/usr/bin/env bash
# End-to-end test: quire in a real browser (Debian's Chromium, headless, driven by
# playwright-core, pinned in package-lock.json; no browser download).
#
#   tests/e2e/run.sh
#
# Installs Chromium when /usr/bin/chromium is missing (apt-get), installs playwright-core
# (npm ci here), the OP (npm ci in tests/interop, whose op.mjs is reused) and aiosmtpd
# (tests/mail/install.sh), builds quire in release (QUIRE_BIN=path skips the build; CI
# passes the one binary it builds for interop and e2e), then runs suite.mjs, which
# starts on free loopback ports:
#   - quire with local accounts (SQLite in a temporary folder) and [mail],
#   - node oidc-provider (tests/interop/op.mjs) and a second quire with providers ["oidc"],
#   - the mail tests' SMTP server (tests/mail/smtp_server.py; aiosmtpd, installed by
#     tests/mail/install.sh when missing), to which the first quire sends its mail,
# drives the self-hoster's, a writer's (tags, preview with and without JavaScript, a post
# scheduled a minute ahead and found once due), a password reset by mail (from the
# forgot page to the new password), an author's authenticator app (set up from the QR
# code's secret, recovery codes, a login with the password then a code, a used code
# refused), a passkey (registered with Chromium's virtual authenticator on a third quire
# addressed as localhost, then a login with it alone), an image (uploaded from the post form, an SVG and HTML named .png refused,
# the post showing it with srcset, on a phone too, /media listing it) and the
# organisation's flows in the browser, and stops everything at the end.
# Screenshots of the main pages at 390 px and 1280 px go to E2E_SCREENSHOTS (default
# target/e2e-screenshots), named near the end. The last line is "N passed, N failed";
# exits non-zero on any failure.
#
# Time limits (seconds): E2E_BUILD_TIMEOUT (build, default 1800), E2E_TEST_TIMEOUT
# (start-up and the suite, default 300: one post is scheduled a minute ahead and read
# once due; the second-factor login waits up to 30 s for the app's next code). E2E_ONLY=REGEX runs only the scenarios whose names match.
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
  bash "$ROOT/tests/apt-install.sh" chromium || setup_failed "apt-get install chromium failed"
  [ -x "$CHROMIUM" ] || setup_failed "no $CHROMIUM after apt-get install chromium"
fi

# playwright-core, the OP it shares with the interop test, and the mail tests' SMTP server.
npm_ci "$HERE"
npm_ci "$ROOT/tests/interop"
need_smtp_server
BUILD_TIMEOUT="${E2E_BUILD_TIMEOUT:-1800}" quire_bin
export HARNESS_TIMEOUT="${E2E_TEST_TIMEOUT:-300}"
export E2E_SCREENSHOTS="${E2E_SCREENSHOTS:-$ROOT/target/e2e-screenshots}"
run_harness "$HERE/suite.mjs"
