#!/bin/bash
# The unit's system-call filter against the calls capvaultd really makes:
# the daemon runs under strace (every thread) while it starts, imports a
# capture (io_uring reads, RocksDB, the object store), moves a corrupt one
# to .failed, reloads on SIGHUP and stops on SIGTERM; every system call
# seen must be allowed by the installed unit's SystemCallFilter= lines
# (the allow-list, groups expanded by systemd-analyze, minus the ~deny
# list). Skipped without strace or systemd-analyze, where ptrace is not
# permitted, and for sanitizer builds (their runtime makes calls the
# shipped binary does not).
. "$(dirname "$0")/lib.sh"
: "${CAPVAULTD:?path to the capvaultd binary}"
: "${CAPVAULT_UNIT:?the built capvault.service}"

skip() { echo "SKIP: $*"; exit 77; }
command -v strace >/dev/null || skip "no strace"
command -v systemd-analyze >/dev/null || skip "no systemd-analyze"
strace -f -qq -o /dev/null true 2>/dev/null || skip "ptrace not permitted here"
if ldd "$CAPVAULTD" | grep -E 'lib(a|ub|t)san' >/dev/null; then
	skip "sanitizer build"
fi

# expand NAME...: syscall names, @groups expanded recursively.
expand() {
	local x
	for x in "$@"; do
		case $x in
		@*) expand $(systemd-analyze syscall-filter "$x" |
			awk 'NR > 1 && $1 !~ /^#/ { print $1 }') ;;
		*) echo "$x" ;;
		esac
	done
}

allow=() deny=()
while IFS= read -r line; do
	v=${line#SystemCallFilter=}
	if [ "${v:0:1}" = "~" ]; then
		deny+=(${v:1})
	else
		allow+=($v)
	fi
done < <(grep '^SystemCallFilter=' "$CAPVAULT_UNIT")
check "the unit has an allow-list" 1 "$([ ${#allow[@]} -gt 0 ] && echo 1)"
expand "${allow[@]}" | sort -u > "$T/allowed"
expand "${deny[@]}" | sort -u > "$T/denied"
comm -23 "$T/allowed" "$T/denied" > "$T/permitted"

mkdir -p "$T/in"
cat > "$T/d.yaml" <<YAML
store: $T/store
jobs: 2
import:
  - path: $T/in
    settle_time: 200ms
api:
  listen: []
YAML
strace -f -qq -o "$T/trace" "$CAPVAULTD" --config "$T/d.yaml" 2>"$T/d.log" &
SPID=$!
trap 'kill -9 "$SPID" 2>/dev/null || true; rm -rf "$T"' EXIT

wait_log() {
	local i
	for i in $(seq 300); do
		grep -qF -- "$1" "$T/d.log" && return 0
		sleep 0.1
	done
	fail "timed out waiting for '$1' in the daemon log"
}
wait_log "started:"
"$MKCAP" --packets 2000 -o "$T/a.pcap"
mv "$T/a.pcap" "$T/in/"
echo "not a capture" > "$T/in/bad.pcap"
wait_log "imported $T/in/a.pcap"
wait_log "failed $T/in/bad.pcap"
DPID=$(awk 'NR == 1 { print $1 }' "$T/trace") # the daemon, strace's child
kill -HUP "$DPID"
wait_log "configuration reloaded"
kill -TERM "$DPID"
rc=0
wait "$SPID" || rc=$?
check "capvaultd under strace exits 0" 0 "$rc"

sed -nE 's/^[0-9]+ +([a-z0-9_]+)\(.*/\1/p' "$T/trace" | sort -u > "$T/called"
check "io_uring was used" 1 "$(grep -qx io_uring_enter "$T/called" && echo 1)"
comm -23 "$T/called" "$T/permitted" > "$T/blocked"
checks=$((checks + 1))
if [ -s "$T/blocked" ]; then
	fail "system calls the unit's filter would refuse: $(tr '\n' ' ' < "$T/blocked")"
else
	echo "$(wc -l < "$T/called") distinct system calls, all allowed by the unit"
fi
finish
