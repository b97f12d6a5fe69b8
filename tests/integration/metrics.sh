#!/usr/bin/env bash
# metrics.sh - what /metrics gives an operator (issue 17): responses by
# route pattern and status (a CloudShark call's token never appears, the
# counter of the route just called goes up), the build, the standard
# process_* metrics with sane values, import failures by reason, the
# scrub's state; promtool check metrics accepts the text when installed.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/daemon_lib.sh"

S=$CAPVAULT_STORE
mkdir -p "$T/in"
RO=$("$CAPVAULT" token add ro --store "$S" --scopes read 2>/dev/null)
CS=$("$CAPVAULT" token add cs --store "$S" --scopes read,upload --cloudshark 2>/dev/null)
write_config() { write_inbox_config "$S" "$1" "  interval: 1h"; }
start_daemon
scrape() { curl -sS -H "Authorization: Bearer $RO" "$U/metrics" >"$T/$1"; }
# value FILE SAMPLE: the value of the sample line (name with its labels), or "none".
value() { awk -v s="$2" '$1 == s { v = $2 } END { print v == "" ? "none" : v }' "$T/$1"; }

# A malformed file: one failure with reason "malformed".
echo garbage >"$T/in/bad.pcap"
wait_for "bad file moved to .failed" test -e "$T/in/.failed/bad.pcap.error"

scrape m1
check "build info" 1 "$(grep -c '^capvault_build_info{version="[0-9][^"]*"} 1$' "$T/m1")"
check "malformed failure" 1 "$(value m1 'capvault_import_failures_total{reason="malformed"}')"
for r in io no_space permission other; do
	check "$r failures" 0 "$(value m1 "capvault_import_failures_total{reason=\"$r\"}")"
done
check "scrub enabled" 1 "$(value m1 capvault_scrub_enabled)"
for m in capvault_scrub_running capvault_scrub_last_objects capvault_scrub_next_run_timestamp_seconds; do
	[ "$(value m1 "$m")" != none ] || fail "$m missing"
done

# The process metrics, against what /proc says of the daemon.
now=$(date +%s)
start=$(value m1 process_start_time_seconds)
awk -v s="$start" -v n="$now" 'BEGIN { exit !(s > n - 600 && s <= n + 1) }' ||
	fail "process_start_time_seconds $start, now $now"
rss=$(value m1 process_resident_memory_bytes)
awk -v r="$rss" 'BEGIN { exit !(r > 1000000 && r < 8e9) }' || fail "resident memory $rss"
fds=$(value m1 process_open_fds)
real=$(ls "/proc/$DPID/fd" | wc -l)
awk -v f="$fds" -v r="$real" 'BEGIN { exit !(f >= 3 && f - r < 10 && r - f < 10) }' ||
	fail "process_open_fds $fds, /proc/$DPID/fd holds $real"
cpu=$(value m1 process_cpu_seconds_total)
awk -v c="$cpu" 'BEGIN { exit !(c >= 0 && c < 600) }' || fail "cpu seconds $cpu"
[ "$(value m1 process_max_fds)" != none ] || fail "process_max_fds missing"

# Responses by route pattern: the scrape itself, an unknown path, a 404
# on a known route, and CloudShark calls whose path holds the token.
# A scrape is counted once answered: the first one is not in its own text.
before=$(value m1 'capvault_http_requests_total{route="/metrics",status="200"}')
[ "$before" != none ] || before=0
curl -sS -o /dev/null "$U/no/such/place"
curl -sS -o /dev/null -H "Authorization: Bearer $RO" "$U/v1/captures/999999"
"$MKCAP" --packets 20 --seed 3 -o "$T/cs.pcap"
check "cloudshark upload" 200 "$(curl -sS -o /dev/null -w '%{http_code}' -F "file=@$T/cs.pcap" \
	"$U/api/v1/$CS/upload")"
curl -sS -o /dev/null "$U/api/v1/$CS/nonsense"
scrape m2
after=$(value m2 'capvault_http_requests_total{route="/metrics",status="200"}')
check "/metrics counter went up by the scrape" $((before + 1)) "$after"
# The unknown path and the CloudShark nonsense.
check "unmatched paths" 2 "$(value m2 'capvault_http_requests_total{route="other",status="404"}')"
check "missing capture" 1 "$(value m2 'capvault_http_requests_total{route="/v1/captures/*",status="404"}')"
check "cloudshark upload by pattern" 1 \
	"$(value m2 'capvault_http_requests_total{route="/api/v1/*/upload",status="200"}')"
grep -qF "$CS" "$T/m2" && fail "the CloudShark token appears in /metrics"
grep -qF "no/such" "$T/m2" && fail "a raw path appears in /metrics"
# Every route label is a pattern: words and '*' segments, or "other".
bad=$(grep -o 'route="[^"]*"' "$T/m2" | grep -vE '^route="(other|(/([a-z]+|v1|\*))+)"$' || true)
[ -z "$bad" ] || fail "route labels that are not patterns: $bad"

# The rules and the dashboard name only metrics the daemon exports.
mon=$(dirname "$0")/../../tools/monitoring
for name in $(grep -ohE '\b(capvault|process)_[a-z_]+' "$mon/capvault.rules.yml" \
	"$mon/capvault-dashboard.json" | sed -E 's/_bucket$//' | sort -u); do
	checks=$((checks + 1))
	grep -qE "^$name(\{| |_bucket)" "$T/m2" || fail "$name is in tools/monitoring but not in /metrics"
done

if command -v promtool >/dev/null; then
	checks=$((checks + 1))
	promtool check metrics <"$T/m2" >"$T/lint" 2>&1 ||
		fail "promtool check metrics: $(cat "$T/lint")"
else
	echo "promtool missing: metrics text not linted"
fi

stop_daemon
finish
