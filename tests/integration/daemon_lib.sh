# daemon_lib.sh - a real capvaultd for integration tests, sourced after
# lib.sh. The test defines write_config PORT (writes $T/d.yaml listening on
# 127.0.0.1:PORT); start_daemon picks a random free port (retrying a taken
# one) and sets PORT, U (its base URL) and DPID; stop_daemon checks the
# exit code and that no sanitizer spoke, then runs after_stop if defined.
: "${CAPVAULTD:?path to the capvaultd binary}"

DPID=
trap '[ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null; rm -rf "$T"' EXIT

wait_for() {
	local desc=$1 i
	shift
	for i in $(seq 200); do
		if "$@"; then return 0; fi
		sleep 0.05
	done
	fail "timed out waiting for: $desc"
	return 1
}

started() { grep -q 'started:' "$T/d.log" || ! kill -0 "$DPID" 2>/dev/null; }

start_daemon() {
	local try
	for try in 1 2 3 4 5 6 7 8; do
		PORT=$((20000 + RANDOM % 20000))
		write_config "$PORT"
		: > "$T/d.log"
		"$CAPVAULTD" --config "$T/d.yaml" 2>>"$T/d.log" &
		DPID=$!
		wait_for "daemon start" started
		if kill -0 "$DPID" 2>/dev/null; then
			U="http://127.0.0.1:$PORT"
			return 0
		fi
		wait "$DPID" 2>/dev/null || true
		DPID=
		grep -q "in use" "$T/d.log" || break
	done
	fail "daemon did not start: $(cat "$T/d.log")"
	finish
	exit 1
}

stop_daemon() {
	local rc=0
	kill -TERM "$DPID"
	wait "$DPID" || rc=$?
	DPID=
	check "daemon exit code" 0 "$rc"
	if grep -qE "runtime error|Sanitizer" "$T/d.log"; then
		fail "sanitizer report: $(grep -A5 -E "runtime error|Sanitizer" "$T/d.log" | head -20)"
	fi
	if declare -F after_stop > /dev/null; then
		after_stop
	fi
}
