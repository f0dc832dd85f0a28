#!/usr/bin/env bash
# Loads a Mirador report in headless Chromium at 1280 and 800 px wide and fails when the page
# scrolls sideways or a card, table, figure or image runs past its container.
#
#   scripts/report-check.sh [path/to/report/index.html ...]
#
# Without an argument it checks the newest nightly run's report (reports/nightly/latest/report).
# A small script is added to a copy of each page: it opens every <details>, measures the layout
# and writes its verdict into the page title, which is read back from the DOM Chromium dumps.
# Where Chromium is not installed the check is skipped (exit 0) with a message saying so.
# Exit codes: 0 ok or skipped, 1 overflow found, 2 the check itself could not run.
set -euo pipefail

browser=""
for candidate in "${CHROMIUM:-}" chromium chromium-browser google-chrome; do
    if [ -n "$candidate" ] && command -v "$candidate" > /dev/null 2>&1; then
        browser=$candidate
        break
    fi
done
if [ -z "$browser" ]; then
    echo "report-check: skipped, no Chromium found (install Debian's \`chromium\` or set CHROMIUM=/path/to/chrome)"
    exit 0
fi

pages=("$@")
if [ ${#pages[@]} -eq 0 ]; then
    pages=(reports/nightly/latest/report/index.html)
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The measurement. Every element must lie within the viewport; every card (section), table,
# figure, image and code block must lie within the content box of the element that holds it.
read -r -d '' probe << 'EOF' || true
<script>
window.addEventListener('load', function () {
  document.querySelectorAll('details').forEach(function (d) { d.open = true; });
  var problems = [];
  var root = document.documentElement;
  var viewport = root.clientWidth;
  var name = function (el) {
    var s = el.tagName.toLowerCase();
    if (el.id) { s += '#' + el.id; }
    if (el.className && typeof el.className === 'string') { s += '.' + el.className.split(' ').join('.'); }
    var section = el.closest('section');
    if (section && section !== el) { s += ' in section#' + section.id; }
    return s;
  };
  if (root.scrollWidth > viewport) {
    problems.push('page ' + root.scrollWidth + ' px wide in a ' + viewport + ' px viewport');
  }
  document.querySelectorAll('body *').forEach(function (el) {
    var r = el.getBoundingClientRect();
    if (r.width > 0 && r.right > viewport + 0.5) {
      problems.push(name(el) + ' ends at ' + Math.round(r.right) + ' px, past the ' + viewport + ' px viewport');
    }
  });
  document.querySelectorAll('section, table, figure, img, pre, td, th').forEach(function (el) {
    var box = el.parentElement;
    if (!box) { return; }
    var style = getComputedStyle(box);
    var b = box.getBoundingClientRect();
    var right = b.right - parseFloat(style.paddingRight) - parseFloat(style.borderRightWidth);
    var r = el.getBoundingClientRect();
    if (r.width > 0 && r.right > right + 0.5) {
      problems.push(name(el) + ' overflows its container by ' + Math.round(r.right - right) + ' px');
    }
    if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX !== 'visible') {
      problems.push(name(el) + ' content is ' + el.scrollWidth + ' px in ' + el.clientWidth + ' px');
    }
  });
  var seen = {};
  problems = problems.filter(function (p) { if (seen[p]) { return false; } seen[p] = true; return true; });
  document.title = problems.length === 0
    ? 'REPORT-CHECK OK ' + viewport
    : 'REPORT-CHECK FAIL ' + viewport + ': ' + problems.slice(0, 20).join(' | ');
});
</script>
EOF

status=0
for page in "${pages[@]}"; do
    if [ ! -f "$page" ]; then
        echo "report-check: $page not found (run \`just nightly\` first, or name a report's index.html)" >&2
        exit 2
    fi
    probed="$work/index.html"
    # The probe goes after the page (an HTML parser puts it at the end of the body).
    { cat "$page"; printf '%s\n' "$probe"; } > "$probed"
    for width in 1280 800; do
        profile=$(mktemp -d "$work/profile.XXXXXX")
        dom="$work/dom-$width.html"
        if ! timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
            --disable-background-networking --disable-component-update --disable-sync \
            --user-data-dir="$profile" --window-size="$width,2000" --hide-scrollbars \
            --run-all-compositor-stages-before-draw --virtual-time-budget=5000 \
            --dump-dom "file://$probed" > "$dom" 2> "$work/chromium.log"; then
            echo "report-check: Chromium failed on $page at $width px:" >&2
            tail -5 "$work/chromium.log" >&2
            exit 2
        fi
        verdict=$(sed -n 's:.*<title>\(REPORT-CHECK[^<]*\)</title>.*:\1:p' "$dom" | head -1)
        case "$verdict" in
            "REPORT-CHECK OK $width")
                echo "report-check: $page at $width px: no overflow" ;;
            "REPORT-CHECK FAIL"*)
                echo "report-check: $page at $width px: ${verdict#REPORT-CHECK FAIL $width: }" >&2
                status=1 ;;
            "REPORT-CHECK OK"*)
                echo "report-check: $page laid out at ${verdict#REPORT-CHECK OK } px, not $width px" >&2
                exit 2 ;;
            *)
                echo "report-check: no verdict from Chromium for $page at $width px" >&2
                exit 2 ;;
        esac
    done
done
exit $status
