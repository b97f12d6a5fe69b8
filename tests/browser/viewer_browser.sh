#!/bin/bash
# The web viewer in a real browser (#19): Debian's chromium, driven by
# puppeteer-core (walk.mjs), against a real capvaultd with imported
# captures. Walks login by link and by form, the list and its search, a
# capture page, the packet view and its detail pane, upload, annotate,
# download, delete, logout and a page asked for without a login; axe-core
# on every page; screenshots into $SCREENSHOTS. Skipped (77) without
# chromium, node or the npm packages (npm ci fetches them when it can).
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/../integration/daemon_lib.sh"

HERE=$(cd "$(dirname "$0")" && pwd)
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || { echo "no $CHROMIUM"; exit 77; }
command -v node >/dev/null || { echo "no node"; exit 77; }
if [ ! -d "$HERE/node_modules/puppeteer-core" ] || [ ! -d "$HERE/node_modules/axe-core" ]; then
	command -v npm >/dev/null || { echo "no npm"; exit 77; }
	(cd "$HERE" && npm ci --no-audit --no-fund --ignore-scripts >&2) ||
		{ echo "npm ci failed: no puppeteer-core/axe-core"; exit 77; }
fi
: "${SCREENSHOTS:=$T/screenshots}"
mkdir -p "$SCREENSHOTS"

STORE="$T/store"
write_config() {
	cat > "$T/d.yaml" <<YAML
store: $STORE
jobs: 1
import:
  - path: $T/in
    after_import: delete
retention:
  protect_tag: keep
  policies:
    - name: scratch
      tags: [scratch]
      max_age: 1d
api:
  listen: ["127.0.0.1:$1"]
YAML
}
ADM=$("$CAPVAULT" token add admin-web --store "$STORE" --scopes admin 2>/dev/null)
# A few captures to list, one to search for, and one to upload.
for i in 1 2 3; do
	"$MKCAP" --packets 40 --hosts 4 --seed "$i" --start $((1764800000 + i * 3600)) -o "$T/branch-office-$i.pcap"
	"$CAPVAULT" import --store "$STORE" --tags "site$i" "$T/branch-office-$i.pcap" >/dev/null
done
"$MKCAP" --format pcapng --packets 120 --hosts 6 --flows 8 --seed 9 --start 1764900000 -o "$T/datacenter-uplink.pcapng"
"$CAPVAULT" import --store "$STORE" --tags dc,uplink "$T/datacenter-uplink.pcapng" >/dev/null
"$MKCAP" --packets 25 --hosts 2 --seed 11 -o "$T/new-upload.pcap"
mkdir -p "$T/in"
start_daemon
# One import that works and one that fails, for the imports page.
"$MKCAP" --packets 10 --seed 21 -o "$T/in/.dropped.tmp" && mv "$T/in/.dropped.tmp" "$T/in/dropped.pcap"
printf 'this is not a capture\n' > "$T/in/.notes.tmp" && mv "$T/in/.notes.tmp" "$T/in/notes.pcap"
wait_for "the dropped file imported" gone "$T/in/dropped.pcap"
wait_for "the bad file failed" logged "notes.pcap"

PROFILE="$T/chromium-profile"
mkdir -p "$PROFILE"
rc=0
BASE="$U" TOKEN="$ADM" CHROMIUM="$CHROMIUM" PROFILE="$PROFILE" SCREENSHOTS="$SCREENSHOTS" \
	UPLOAD="$T/new-upload.pcap" NODE_PATH="$HERE/node_modules" \
	node "$HERE/walk.mjs" || rc=$?
checks=$((checks + 1))
[ "$rc" = 0 ] || fail "the browser walk failed (exit $rc)"
check "the token never in the log" "0" "$(grep -c "$ADM" "$T/d.log" || true)"
stop_daemon
echo "screenshots: $SCREENSHOTS"
finish
