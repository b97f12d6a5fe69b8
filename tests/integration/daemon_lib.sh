# daemon_lib.sh - a real capvaultd for the shell tests, sourced after
# lib.sh. The daemon reads $T/d.yaml and appends its log to $T/d.log (all
# its starts in one log).
# - The test writes $T/d.yaml itself, or defines write_config PORT (writes
#   $T/d.yaml listening on 127.0.0.1:PORT): then start_daemon picks a
#   random free port (retrying a taken one) and sets PORT and U (its base
#   URL).
# - DAEMON_AS, when set, is a command the daemon runs under (e.g. setpriv
#   to another user).
# - on_exit, when defined, runs at exit after the daemon is killed and
#   before $T is removed (unmounts, restored settings); after_stop, when
#   defined, runs after each stop_daemon.
: "${CAPVAULTD:?path to the capvaultd binary}"

DPID=
DAEMON_AS=()

daemon_exit() {
	[ -z "$DPID" ] || kill -9 "$DPID" 2>/dev/null || true
	if declare -F on_exit >/dev/null; then
		on_exit || true
	fi
	# Last, and succeeding: a failing command here would become the exit code.
	rm -rf "$T" || true
}
trap daemon_exit EXIT

# mount_test_fs SIZE: a tmpfs of SIZE at $T/fs ($FS), for a store that
# runs out of room; it becomes the test's on_exit, which unmounts it and,
# when a check failed, shows the daemon's log and the largest files there.
# Skips (77) without root or when mounting a tmpfs is not permitted.
mount_test_fs() {
	FS=$T/fs
	[ "$(id -u)" = 0 ] || { echo "SKIP: needs root to mount a tmpfs"; exit 77; }
	mkdir -p "$FS"
	mount -t tmpfs -o "size=$1" tmpfs "$FS" 2>/dev/null ||
		{ echo "SKIP: cannot mount a tmpfs here"; exit 77; }
	on_exit() {
		[ "$failures" -gt 0 ] && { tail -40 "$T/d.log"; du -ah "$FS" | sort -h | tail -12; } >&2
		umount "$FS" 2>/dev/null || umount -l "$FS"
	}
}

# room_store SIZE RETENTION: a store ($S, also CAPVAULT_STORE) on a SIZE
# tmpfs (mount_test_fs), $T/in and $T/src, MB, captures (how many the
# store lists), and write_config for a daemon importing $T/in whose
# retention: section holds the lines in RETENTION (each indented two
# spaces; interval 1h comes first).
room_store() {
	mount_test_fs "$1"
	S=$FS/store
	export CAPVAULT_STORE=$S
	MB=$((1024 * 1024))
	ROOM_RETENTION=$2
	mkdir -p "$T/in" "$T/src"
	captures() { "$CAPVAULT" ls --json | jq length; }
	write_config() {
		write_inbox_config "$S" "$1"
		printf 'retention:\n  interval: 1h\n%s\n' "$ROOM_RETENTION" >>"$T/d.yaml"
	}
}

# room_captures N: $T/src/c1.pcap .. cN.pcap, 4 MiB each (seeds 1..N,
# starting 100 s apart from 2020-09-13).
room_captures() {
	for i in $(seq "$1"); do
		"$MKCAP" --size $((4 * MB)) --seed "$i" --start $((1600000000 + i * 100)) \
			-o "$T/src/c$i.pcap"
	done
}

# room_import N: c1..cN dropped into $T/in one by one, each waited for.
room_import() {
	for i in $(seq "$1"); do
		cp "$T/src/c$i.pcap" "$T/in/"
		wait_for "c$i imported" logged "imported $T/in/c$i.pcap"
	done
}

# poll_until SECONDS COMMAND...: polls COMMAND every 50 ms for up to
# SECONDS; 0 once it succeeds, 1 on a time-out.
poll_until() {
	local tries=$(($1 * 20))
	shift
	for _ in $(seq "$tries"); do
		if "$@"; then return 0; fi
		sleep 0.05
	done
	return 1
}

# wait_for DESCRIPTION COMMAND...: polls COMMAND up to 30 s; a check. On a
# time-out it fails and returns 1.
wait_for() {
	local desc=$1
	shift
	checks=$((checks + 1))
	poll_until 30 "$@" && return 0
	fail "timed out waiting for: $desc"
	return 1
}

# hung_daemon: what a daemon that neither started nor died was doing: the
# end of its log and, where gdb is installed, every thread's stack.
hung_daemon() {
	echo "--- end of $T/d.log:" >&2
	tail -30 "$T/d.log" >&2 || true
	[ -n "$DPID" ] && command -v gdb >/dev/null || return 0
	timeout 60 gdb -p "$DPID" -batch -ex "thread apply all bt" 2>&1 |
		grep -E '^(Thread|#)' >&2 || true
}

logged() { grep -qF -- "$1" "$T/d.log"; }
count_logged() { grep -cF -- "$1" "$T/d.log" || true; }
gone() { [ ! -e "$1" ]; }
# no_files DIR: no file waits in DIR (its .failed aside).
no_files() { [ -z "$(find "$1" -path "$1/.failed" -prune -o -type f -print)" ]; }

# up_or_dead STARTS: the log holds more than STARTS start lines, or the
# daemon has exited.
# A daemon killed while it starts may stay a zombie until the shell reaps
# it: kill -0 still succeeds on one, so its state is read as well.
up_or_dead() {
	[ "$(count_logged started:)" -gt "$1" ] || ! kill -0 "$DPID" 2>/dev/null ||
		grep -q '^State:.*Z' "/proc/$DPID/status" 2>/dev/null
}

# write_inbox_config STORE PORT [SCRUB]: a $T/d.yaml (for write_config)
# for a daemon on STORE that imports what lands in $T/in at once, listens
# on 127.0.0.1:PORT and does not scrub (SCRUB: the scrub: section's
# lines instead). A test appends its own sections
# (rgw_object_store_config, retention:).
write_inbox_config() {
	cat >"$T/d.yaml" <<EOC
store: $1
import:
  - path: $T/in
    settle_time: 0s
api:
  listen: ["127.0.0.1:$2"]
scrub:
${3:-  interval: 0s}
EOC
}

# start_daemon [ENV=VALUE...]: capvaultd on $T/d.yaml with ENV set; returns
# once it logged its start line, or fails the test and exits.
start_daemon() {
	local starts taken port=
	declare -F write_config >/dev/null && port=yes
	touch "$T/d.log"
	for _ in 1 2 3 4 5 6 7 8; do
		# Counted before the launch: after it, a quick start line would be counted too.
		starts=$(count_logged started:)
		taken=$(count_logged "in use")
		if [ -n "$port" ]; then
			PORT=$((20000 + RANDOM % 20000))
			write_config "$PORT"
			U="http://127.0.0.1:$PORT"
		fi
		env "$@" "${DAEMON_AS[@]}" "$CAPVAULTD" --config "$T/d.yaml" 2>>"$T/d.log" &
		DPID=$!
		wait_for "daemon start" up_or_dead "$starts" || { hung_daemon; break; }
		kill -0 "$DPID" 2>/dev/null && return 0
		wait "$DPID" 2>/dev/null || true
		DPID=
		# Only a taken port is worth another try.
		if [ -z "$port" ] || [ "$(count_logged "in use")" -le "$taken" ]; then
			break
		fi
	done
	fail "daemon did not start: $(tail -20 "$T/d.log")"
	finish
	exit 1
}

# stop_daemon: SIGTERM; checks the exit code and that no sanitizer spoke.
stop_daemon() {
	local rc=0
	kill -TERM "$DPID"
	wait "$DPID" || rc=$?
	DPID=
	check "daemon exit code after SIGTERM" 0 "$rc"
	if grep -qE "runtime error|Sanitizer" "$T/d.log"; then
		fail "sanitizer report: $(grep -A5 -E "runtime error|Sanitizer" "$T/d.log" | head -20)"
	fi
	if declare -F after_stop >/dev/null; then
		after_stop
	fi
}

# kill_daemon: SIGKILL, as a crash.
kill_daemon() {
	kill -9 "$DPID" 2>/dev/null || fail "capvaultd had exited before its kill: $(tail -5 "$T/d.log")"
	wait "$DPID" 2>/dev/null || true
	DPID=
}

# The CLI through the daemon against the CLI offline on the same store:
# a command's outputs in $T/dmn (the daemon running) and $T/off.
# cli_run DIR NAME ARGS...: stdout, stderr and exit code of capvault ARGS
# in DIR/NAME.out, .err and .rc; sanitizer output fails the test.
cli_run() {
	local dir=$1 name=$2 rc=0
	shift 2
	"$CAPVAULT" "$@" >"$dir/$name.out" 2>"$dir/$name.err" || rc=$?
	echo "$rc" > "$dir/$name.rc"
	if grep -qE "runtime error|Sanitizer" "$dir/$name.err"; then
		fail "sanitizer report in capvault $*: $(head -20 "$dir/$name.err")"
	fi
}

# compare NAME...: the daemon's and the offline run's outputs are the same.
compare() {
	local name
	for name in "$@"; do
		diff -u "$T/off/$name.out" "$T/dmn/$name.out" >&2 ||
			fail "$name: daemon stdout differs from offline"
		diff -u "$T/off/$name.err" "$T/dmn/$name.err" >&2 ||
			fail "$name: daemon stderr differs from offline"
		check "$name exit code" "$(cat "$T/off/$name.rc")" "$(cat "$T/dmn/$name.rc")"
	done
}
