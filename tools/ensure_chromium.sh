#!/usr/bin/env bash
# The browser tests drive Debian's chromium (no browser download). Install it when it is missing and we can.
set -euo pipefail
bin=${FILTERLIB_CHROMIUM:-/usr/bin/chromium}
[ -x "$bin" ] && exit 0
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "ensure_chromium: installing Debian's chromium for the browser tests"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
  [ -x "$bin" ] && exit 0
fi
echo "ensure_chromium: no chromium at $bin. Install it (Debian: sudo apt-get install chromium) or set FILTERLIB_CHROMIUM" >&2
exit 1
