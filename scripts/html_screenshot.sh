#!/bin/sh
# Render an HTML report in headless Chromium (Debian: apt-get install chromium) and save a
# screenshot, to look at the page as a browser draws it. Usage:
#   scripts/html_screenshot.sh REPORT.html [OUT.png] [WIDTHxHEIGHT]
# Chromium runs offline here: --no-proxy-server and a blocked host resolver make any
# attempt to fetch something fail, so a page that needs the network would look broken.
set -eu
report=$(realpath "$1")
out=${2:-${report%.html}.png}
size=${3:-1280x2400}
[ -f "$report" ] || { echo "html_screenshot: $1: no such file" >&2; exit 2; }
rm -f "$out"
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --no-proxy-server \
  --host-resolver-rules="MAP * ~NOTFOUND" --window-size="${size%x*},${size#*x}" \
  --screenshot="$out" "file://$report" 2>/dev/null || true
if [ ! -s "$out" ]; then
  echo "html_screenshot: chromium wrote no screenshot for $report" >&2
  exit 1
fi
echo "screenshot: $out"
