# lib.sh - helpers for the shell integration tests. Sourced, not run.
# Each test gets a fresh temporary folder, removed on exit.

set -euo pipefail

: "${CAPVAULT:?path to the capvault binary}"
: "${MKCAP:?path to the mkcap generator}"

T=$(mktemp -d /tmp/capvault-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
export CAPVAULT_STORE="$T/store"
# Only `capvault init` (and capvaultd) create a store: $CAPVAULT_STORE is
# made here, unless the test sets LIB_NO_STORE=1 (it wants no store there).
[ -n "${LIB_NO_STORE:-}" ] || "$CAPVAULT" init >/dev/null
failures=0
checks=0

fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

# check DESCRIPTION EXPECTED ACTUAL
check() {
	checks=$((checks + 1))
	if [ "$2" != "$3" ]; then
		fail "$1: expected '$2', got '$3'"
	fi
}

# Runs a command, expecting exit code $1.
expect_rc() {
	local want=$1 rc=0
	shift
	"$@" >"$T/out" 2>"$T/err" || rc=$?
	checks=$((checks + 1))
	if [ "$rc" != "$want" ]; then
		fail "'$*' exited $rc, expected $want; stderr: $(head -c 500 "$T/err")"
	fi
}

finish() {
	echo "$checks checks, $failures failed"
	[ "$failures" -eq 0 ]
}
