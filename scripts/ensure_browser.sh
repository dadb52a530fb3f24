#!/usr/bin/env bash
# Headless Chromium from Debian's package, for the page tests (tests/test_html_report.py) and `make bench`
# (bench/b_report_page.py). Idempotent: nothing happens when a browser is already there ($CHROMIUM or chromium on
# PATH). Installs with apt-get as root (or passwordless sudo); elsewhere it says why not and exits 0: the browser
# tests then skip with that reason, except under CI=true, where they fail.
set -euo pipefail
if [ -n "${CHROMIUM:-}" ] && [ -x "$CHROMIUM" ]; then exit 0; fi
for b in chromium chromium-browser; do command -v "$b" >/dev/null 2>&1 && exit 0; done
if ! command -v apt-get >/dev/null 2>&1; then
  echo "[browser] no Chromium and no apt-get here: install a Chromium and set CHROMIUM=/path/to/it to run the browser tests" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "[browser] no Chromium, and apt-get needs root: run 'sudo apt-get install -y chromium' to run the browser tests" >&2
    exit 0
  fi
fi
echo "[browser] installing Debian's chromium for the page tests (apt-get)"
if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium; }; then
  echo "[browser] apt-get could not install chromium: the browser tests will skip (and fail under CI=true)" >&2
fi
exit 0
