#!/usr/bin/env bash
# Installs Debian's Chromium for the browser test when it is missing and we may (root + apt-get).
# Never fails the build: without Chromium the browser test skips and says why.
set -u
for b in chromium chromium-browser; do
  if command -v "$b" >/dev/null 2>&1; then exit 0; fi
done
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-chromium: not root or no apt-get; the browser test will be skipped" >&2
  exit 0
fi
echo "ensure-chromium: installing Debian's chromium (about a minute)..." >&2
export DEBIAN_FRONTEND=noninteractive
(apt-get update -qq && apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null) \
  || echo "ensure-chromium: apt-get could not install chromium; the browser test will be skipped" >&2
exit 0
