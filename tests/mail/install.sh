#!/usr/bin/env bash
# The one place the mail tests' SMTP server is installed: aiosmtpd from PyPI, pinned,
# into the user's Python when it is missing. Run by .ci/run and, when needed, by the
# test toolkit (tests/common/smtp.rs).
set -euo pipefail
PY="${PYTHON:-python3}"
if "$PY" -c 'import aiosmtpd' 2>/dev/null; then
  exit 0
fi
"$PY" -m pip install --quiet --disable-pip-version-check 'aiosmtpd==1.4.6'
"$PY" -c 'import aiosmtpd'
