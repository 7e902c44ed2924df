#!/usr/bin/env bash
# Screenshot of a run report in headless Chromium: checks that the page opens offline and renders.
#   bash scripts/report_screenshot.sh results/demo/report.html docs/images/report.png [WIDTH,HEIGHT]
# Needs Debian's `chromium` package (apt-get install -y chromium). Chromium gets no network-facing
# features (no sync, updates or background requests) and a throw-away profile; the report itself
# fetches nothing (its pictures are embedded).
set -euo pipefail

report=${1:?usage: report_screenshot.sh REPORT.html OUT.png [WIDTH,HEIGHT]}
out=${2:?usage: report_screenshot.sh REPORT.html OUT.png [WIDTH,HEIGHT]}
size=${3:-1280,2000}
browser=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}

if [[ -z "$browser" ]]; then
  echo "chromium not found; install it with 'apt-get install -y chromium' or set CHROMIUM=/path/to/chromium." >&2
  exit 1
fi
if [[ ! -f "$report" ]]; then
  echo "Report $report does not exist; run a test with the RunReport callback (e.g. python -m anomalib_ea2d.demo) first." >&2
  exit 1
fi

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
mkdir -p "$(dirname "$out")"
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --screenshot="$(realpath -m "$out")" --window-size="$size" \
  "file://$(realpath "$report")" 2>/dev/null
[[ -s "$out" ]] || { echo "Chromium wrote no screenshot to $out; run it without 2>/dev/null to see why." >&2; exit 1; }
echo "Wrote $out ($(stat -c %s "$out") bytes) from $report."
