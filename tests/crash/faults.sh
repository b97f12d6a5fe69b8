#!/bin/bash
# Power-loss ordering (DESIGN.md invariants 1 and 2): `capvault import`
# of a plain and a gzip capture into an existing store, once per call,
# with that call failing: each io_uring write and fsync (ingest/ring.c's
# CAPVAULT_FAULT hook), each libc fsync/fdatasync, rename, link and write
# to a file (tests/crash/faultinject.c, which also sees RocksDB's WAL and
# MANIFEST). Both copy imports and --move (linked) imports. Each run
# either succeeds with both captures stored, or fails with an error
# message; then the sources are untouched, the store opens, fsck passes,
# no object lacks its record and tmp/ is empty, and the same import
# without a fault succeeds. A fault that fires while the import succeeds
# must be one that cannot lose anything (RocksDB's own info LOG).
. "$(dirname "$0")/../integration/lib.sh"
: "${FAULTINJECT:?path to faultinject.so}"

MAXN=${FAULT_MAX_N:-60}
# The shim is not built with the sanitizers: let ASan start anyway.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0
"$MKCAP" --packets 300 --seed 1 -o "$T/a.pcap"
"$MKCAP" --packets 300 --seed 2 --gzip -o "$T/b.pcap.gz"
"$MKCAP" --packets 100 --seed 3 -o "$T/base.pcap"
sha_a=$(sha256sum <"$T/a.pcap" | cut -c1-64)
sha_b=$(gunzip -c "$T/b.pcap.gz" | sha256sum | cut -c1-64)
"$CAPVAULT" init --store "$T/template" >/dev/null
expect_rc 0 "$CAPVAULT" import --store "$T/template" "$T/base.pcap"
S=$T/store

# fresh: a store copied from the template and sources in $T/src.
fresh() {
	rm -rf "$S" "$T/src" "$T/mark"
	cp -a "$T/template" "$S"
	mkdir "$T/src"
	cp "$T/a.pcap" "$T/b.pcap.gz" "$T/src/"
}

sources_intact() {
	cmp -s "$T/a.pcap" "$T/src/a.pcap" && cmp -s "$T/b.pcap.gz" "$T/src/b.pcap.gz"
}

# check_store WHAT: the store opens, fsck passes, objects = records.
check_store() {
	local what=$1 rc=0 objs recs
	# A read-write open removes leftovers: tmp/ files and objects whose
	# catalog batch never committed.
	"$CAPVAULT" token ls --store "$S" >"$T/ls" 2>&1 || rc=$?
	if [ "$rc" != 0 ]; then
		fail "$what: store does not open after the fault: $(cat "$T/ls")"
		return
	fi
	"$CAPVAULT" ls --store "$S" --json >"$T/ls" 2>"$T/ls.err"
	rc=0
	"$CAPVAULT" fsck --store "$S" >"$T/fsck" 2>&1 || rc=$?
	[ "$rc" = 0 ] || fail "$what: fsck after the fault: $(head -c 600 "$T/fsck")"
	objs=$(find "$S/objects" -type f | wc -l)
	recs=$(jq -r '.[].sha256' "$T/ls" | sort -u | wc -l)
	[ "$objs" = "$recs" ] || fail "$what: $objs objects for $recs records"
	[ -z "$(ls -A "$S/tmp")" ] || fail "$what: tmp/ not empty: $(ls -A "$S/tmp")"
	checks=$((checks + 1))
}

# has SHA: the catalog in $T/ls holds SHA exactly once.
has() { [ "$(jq --arg s "$1" '[.[] | select(.sha256 == $s)] | length' "$T/ls")" = 1 ]; }

# run KIND N MODE: one import with the Nth call of KIND failing. Returns 1
# when the fault did not fire (N is past the last call).
run() {
	local kind=$1 n=$2 mode=$3 rc=0 what="$1 #$2 ($3)"
	local -a env move=()
	[ "$mode" = move ] && move=(--move)
	case $kind in
	ring-*) env=(CAPVAULT_FAULT="${kind#ring-}:$n:$T/mark") ;;
	*) env=(LD_PRELOAD="$FAULTINJECT" FAULT_OP="$kind" FAULT_N="$n" FAULT_MARK="$T/mark") ;;
	esac
	fresh
	env "${env[@]}" "$CAPVAULT" import --store "$S" "${move[@]}" "$T/src/a.pcap" \
		"$T/src/b.pcap.gz" >"$T/out" 2>"$T/err" || rc=$?
	if [ ! -e "$T/mark" ]; then
		[ "$rc" = 0 ] || fail "$what: import failed without a fault: $(cat "$T/err")"
		return 1
	fi
	checks=$((checks + 1))
	if [ "$rc" = 0 ]; then
		# Swallowed: only acceptable if nothing was lost.
		echo "$what: import succeeded despite the fault"
		[ -z "${FAULT_BT:-}" ] || grep -v "faultinject\|libc.so" "$T/err" | c++filt | cut -c1-150 | head -8
		check_store "$what"
		has "$sha_a" && has "$sha_b" || fail "$what: success reported but a capture is missing"
		return 0
	fi
	[ "$rc" = 1 ] || fail "$what: exit code $rc: $(tail -3 "$T/err")"
	grep -qiE "(Input/output error|No space left on device)$" "$T/out" "$T/err" ||
		fail "$what: no clear message: $(tail -c 300 "$T/out") $(tail -c 300 "$T/err")"
	if [ "$mode" = copy ]; then
		sources_intact || fail "$what: a source changed although the import failed"
	else
		# --move: a source may go only once its capture is stored.
		check_store "$what (move)"
		[ -e "$T/src/a.pcap" ] || has "$sha_a" || fail "$what: a.pcap moved but not stored"
		[ -e "$T/src/b.pcap.gz" ] || has "$sha_b" || fail "$what: b.pcap.gz moved but not stored"
		[ ! -e "$T/src/a.pcap" ] || cmp -s "$T/a.pcap" "$T/src/a.pcap" || fail "$what: a.pcap changed"
	fi
	check_store "$what"
	# Retried without the fault, the import completes.
	rc=0
	"$CAPVAULT" import --store "$S" "${move[@]}" "$T/src/"* >"$T/out" 2>"$T/err" || rc=$?
	[ "$rc" = 0 ] || fail "$what: retry failed: $(cat "$T/err")"
	"$CAPVAULT" ls --store "$S" --json >"$T/ls" 2>"$T/ls.err"
	has "$sha_a" && has "$sha_b" || fail "$what: retry did not store both captures"
	return 0
}

# RocksDB's calls (libc fsync and write) are many and the same in both
# modes: every STRIDE-th from a random start, in copy mode only, so that
# the test stays short and CI runs cover them all over time.
for mode in copy move; do
	for kind in ring-write ring-fsync link fsync rename write; do
		stride=1
		case $kind in
		fsync) stride=${FAULT_STRIDE_FSYNC:-3} ;;
		write) stride=${FAULT_STRIDE_WRITE:-5} ;;
		esac
		[ "$mode" = move ] && [ "$stride" -gt 1 -o "$kind" = rename ] && continue
		n=$((1 + RANDOM % stride))
		runs=0
		while [ "$n" -le "$MAXN" ] && run "$kind" "$n" "$mode"; do
			n=$((n + stride))
			runs=$((runs + 1))
		done
		echo "$kind ($mode): $runs faults injected, every ${stride}th call"
		[ "$runs" -gt 0 ] || fail "$kind ($mode): no call to fail"
	done
done
finish
