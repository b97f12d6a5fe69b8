#!/bin/bash
# capvaultd end to end: files written, moved in (nested), renamed from
# .part, corrupt, present at start-up; a keep folder across a restart; a
# kill -9 in the middle of a burst loses and duplicates nothing; and
# --check-config. The CLI cannot open the store while the daemon holds
# it, so the daemon is stopped (exit code checked) before each catalog
# check; while it runs the test watches files and the daemon's log. Every
# wait is a bounded poll, never a fixed sleep.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"

mkdir -p "$T/in" "$T/keep" "$T/src"
cat > "$T/d.yaml" <<YAML
store: $T/store
jobs: 2
log_level: info
import:
  - path: $T/in
    tags: [lab]
    tags_from_subfolders: true
    after_import: delete
    settle_time: 500ms
  - path: $T/keep
    after_import: keep
    settle_time: 500ms
api:
  listen: []
YAML

# --check-config: OK on a good file, every error with file:line:col.
expect_rc 0 "$CAPVAULTD" --check-config "$T/d.yaml"
check "check-config OK" "configuration OK" "$(cat "$T/out")"
printf 'store: %s/store\njobs: lots\nimport:\n  - path: %s/nowhere\n' "$T" "$T" > "$T/bad.yaml"
expect_rc 1 "$CAPVAULTD" --check-config "$T/bad.yaml"
grep -q "bad.yaml:2:7: " "$T/err" || fail "check-config names file:line:col: $(cat "$T/err")"
check "check-config reports every error" 2 "$(grep -c 'bad.yaml:[0-9]*:[0-9]*: ' "$T/err")"
expect_rc 0 "$CAPVAULTD" --version
grep -q '^capvaultd ' "$T/out" || fail "--version: $(cat "$T/out")"

# (5) present before start-up; keep folder too.
"$MKCAP" --packets 100 --seed 5 -o "$T/in/pre.pcap"
"$MKCAP" --packets 100 --seed 6 -o "$T/keep/k.pcap"
start_daemon
wait_for "pre-existing file imported" gone "$T/in/pre.pcap"
wait_for "keep file imported" logged "imported $T/keep/k.pcap:"

# (1) written in place.
"$MKCAP" --packets 100 --seed 1 -o "$T/in/direct.pcap"
wait_for "direct file imported" gone "$T/in/direct.pcap"

# (2) moved in from outside, into a new nested folder.
"$MKCAP" --packets 100 --seed 2 -o "$T/src/moved.pcap"
mkdir -p "$T/in/sub1/sub2"
mv "$T/src/moved.pcap" "$T/in/sub1/sub2/"
wait_for "moved file imported" gone "$T/in/sub1/sub2/moved.pcap"

# (3) a .part file, and (4) a corrupt file meanwhile.
"$MKCAP" --packets 100 --seed 3 -o "$T/in/late.pcap.part"
echo garbage > "$T/in/bad.pcap"
wait_for "corrupt file moved to .failed" test -e "$T/in/.failed/bad.pcap.error"
check "corrupt file kept in .failed" yes "$([ -f "$T/in/.failed/bad.pcap" ] && echo yes)"
grep -q "^$T/in/bad.pcap: offset 0: " "$T/in/.failed/bad.pcap.error" ||
	fail "error note has the file and the offset: $(cat "$T/in/.failed/bad.pcap.error")"
# The log names the file once, then the offset.
grep -q "failed $T/in/bad.pcap: offset 0: .*; moved to $T/in/.failed/bad.pcap" "$T/d.log" ||
	fail "the log line of a malformed file: $(grep bad.pcap "$T/d.log")"
check "corrupt file left the inbox" no "$([ -e "$T/in/bad.pcap" ] && echo yes || echo no)"
# Another corrupt file of the same name never replaces the first in .failed.
echo other garbage > "$T/src/bad.pcap"
mv "$T/src/bad.pcap" "$T/in/bad.pcap"
wait_for "second corrupt file moved beside the first" test -e "$T/in/.failed/bad.1.pcap.error"
# A malformed file with a 255-byte name (its note's name would be longer
# than a name can be): moved all the same, under a name cut before its
# extension, with a note that names it as it was.
long=$(printf 'n%.0s' $(seq 250)).pcap
echo junk > "$T/src/$long"
mv "$T/src/$long" "$T/in/$long"
cut_note() { [ -n "$(find "$T/in/.failed" -name 'nnnn*.pcap.error')" ]; }
wait_for "a 255-byte malformed file moved to .failed" cut_note
grep -q "^$T/in/$long: offset 0: " "$(find "$T/in/.failed" -name 'nnnn*.pcap.error')" ||
	fail "the cut name's note: $(cat "$T"/in/.failed/nnnn*.error)"
check "the 255-byte file left the folder" no "$([ -e "$T/in/$long" ] && echo yes || echo no)"
# A malformed file whose name holds a newline and what looks like a
# note's line: its note is one line, naming it escaped as the log does.
forged=$(printf 'f.pcap: fine\nother.pcap: offset 9: x.pcap')
echo junk > "$T/src/$forged"
mv "$T/src/$forged" "$T/in/$forged"
wait_for "the file with a newline in its name moved to .failed" test -e "$T/in/.failed/$forged.error"
check "its note is one line" 1 "$(wc -l < "$T/in/.failed/$forged.error")"
grep -qxF "$T/in/f.pcap: fine\\x0aother.pcap: offset 9: x.pcap: offset 0: not a pcap or pcapng file (magic 0x6a756e6b)" \
	"$T/in/.failed/$forged.error" || fail "its note, escaped: $(cat "$T/in/.failed/$forged.error")"
check "its bytes kept" junk "$(cat "$T/in/.failed/$forged")"
check "its bytes kept" junk "$(cat "$(find "$T/in/.failed" -name 'nnnn*.pcap')")"
check "the first failed file kept" "garbage" "$(cat "$T/in/.failed/bad.pcap")"
check "the second failed file kept" "other garbage" "$(cat "$T/in/.failed/bad.1.pcap")"
# The corrupt file settled after the .part was written: had the .part
# been reported, it would have been imported by now.
check ".part not imported" yes "$([ -f "$T/in/late.pcap.part" ] && echo yes)"
logged "late.pcap" && fail ".part file was touched: $(grep late.pcap "$T/d.log")"
mv "$T/in/late.pcap.part" "$T/in/late.pcap"
wait_for "renamed file imported" gone "$T/in/late.pcap"
check "keep file still there" yes "$([ -f "$T/keep/k.pcap" ] && echo yes)"
stop_daemon
logged "imported $T/in/sub1/sub2/moved.pcap: capture " || fail "import log line: $(cat "$T/d.log")"
grep -q "$T/in: .* seen, 4 imported, 0 duplicates, 4 failed" "$T/d.log" ||
	fail "shutdown summary: $(grep seen "$T/d.log")"

expect_rc 0 "$CAPVAULT" ls --json --store "$T/store"
check "captures in catalog" 5 "$(jq length "$T/out")"
check "nested tags" '["lab","sub1","sub2"]' \
	"$(jq -c '.[] | select(.name == "moved.pcap") | .tags | sort' "$T/out")"
check "top-level tags" '["lab"]' "$(jq -c '.[] | select(.name == "direct.pcap") | .tags' "$T/out")"

# (6) after a restart the kept file is recognised, not imported again.
start_daemon
wait_for "kept file skipped" logged "skipped $T/keep/k.pcap: kept"

# SIGHUP: an invalid file is refused and the old config kept; a valid
# one adds the new folder.
cp "$T/d.yaml" "$T/d.yaml.good"
echo "jobs: lots" >> "$T/d.yaml"
kill -HUP "$DPID"
wait_for "bad reload refused" logged "keeping the running configuration"
mkdir -p "$T/extra"
cp "$T/d.yaml.good" "$T/d.yaml"
printf '  - path: %s/extra\n    tags: [extra]\n    settle_time: 500ms\n' "$T" > "$T/extra.yaml"
sed -i "/^api:/e cat $T/extra.yaml" "$T/d.yaml"
kill -HUP "$DPID"
wait_for "reload adds a folder" logged "watching $T/extra"
"$MKCAP" --packets 100 --seed 7 -o "$T/extra/x.pcap"
wait_for "file in the added folder imported" gone "$T/extra/x.pcap"
stop_daemon
check "kept file imported once" 1 "$(grep -cE "(imported|duplicate) $T/keep/k.pcap:" "$T/d.log")"
expect_rc 0 "$CAPVAULT" ls --json --store "$T/store"
check "catalog after restart and reload" 6 "$(jq length "$T/out")"

# kill -9 in the middle of a burst of 30: nothing lost, nothing twice.
mkdir -p "$T/burst" "$T/src2"
for i in $(seq 1 30); do
	"$MKCAP" --packets 100 --seed $((100 + i)) -o "$T/src2/b$i.pcap"
done
sed -e "s|$T/store|$T/store2|" -e "s|$T/in|$T/burst|" -e "s|$T/keep|$T/src|" "$T/d.yaml.good" > "$T/d.yaml"
start_daemon
for i in $(seq 1 30); do
	mv "$T/src2/b$i.pcap" "$T/burst/"
	if [ "$i" = 12 ]; then kill_daemon; fi
done
start_daemon
wait_for "burst folder emptied" no_files "$T/burst"
stop_daemon
expect_rc 0 "$CAPVAULT" ls --json --store "$T/store2"
check "burst captures" 30 "$(jq length "$T/out")"
check "one record per sha256" 30 "$(jq -r '.[].sha256' "$T/out" | sort -u | wc -l)"

finish
