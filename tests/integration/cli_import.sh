#!/bin/bash
# The foundation slice end to end with the real CLI: import files and
# folders, dedup, --move linking, a corrupt file left untouched, ls and
# info, and agreement with capinfos when it is installed.
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/in/sub"
"$MKCAP" --packets 500 --hosts 20 --seed 1 -o "$T/in/a.pcap"
"$MKCAP" --format pcapng --packets 300 --seed 2 -o "$T/in/sub/b.pcapng"
"$MKCAP" --packets 200 --nsec --big-endian --seed 3 -o "$T/in/sub/c.pcap"
"$MKCAP" --packets 100 --seed 4 --gzip -o "$T/in/d.pcap.gz"
"$MKCAP" --packets 100 --seed 5 --zstd -o "$T/e.bin"
printf '<html>not a capture</html>\n' > "$T/in/notes.html"
cp "$T/in/notes.html" "$T/notes.copy"

# A folder tree: four captures import, the HTML file fails and stays.
expect_rc 1 "$CAPVAULT" import --tags lab1,bgp "$T/in"
check "imported lines" 4 "$(grep -c '^imported' "$T/out")"
check "failed lines" 1 "$(grep -c '^FAILED' "$T/out")"
grep -q "notes.html: offset 0: not a pcap or pcapng file (magic 0x3c68746d)" "$T/out" ||
	fail "error names file, offset and magic: $(grep FAILED "$T/out")"
cmp -s "$T/in/notes.html" "$T/notes.copy" || fail "failed file was modified"
check "summary" "4 imported, 0 duplicates, 1 failed; 1100 packets" \
	"$(tail -1 "$T/out" | cut -d';' -f1-2 | sed 's/, [0-9]* bytes//')"

# Compression is detected by magic, not name; the object is the decompressed bytes.
expect_rc 0 "$CAPVAULT" import "$T/e.bin"
check "zstd packets" 100 "$("$CAPVAULT" info --json 5 | jq .packets)"
check "zstd compression" '"zstd"' "$("$CAPVAULT" info --json 5 | jq .compression)"

# The same bytes again, under another name and compressed: a duplicate.
gzip -c "$T/in/a.pcap" > "$T/a-again.gz"
expect_rc 0 "$CAPVAULT" import "$T/a-again.gz"
check "duplicate reported" 1 "$(grep -c '^duplicate' "$T/out")"
check "objects stored once" 5 "$(find "$CAPVAULT_STORE/objects" -type f | wc -l)"

# ls and info.
expect_rc 0 "$CAPVAULT" ls --json
check "ls count" 5 "$(jq length "$T/out")"
expect_rc 0 "$CAPVAULT" ls --tag bgp --json
check "ls by tag" 4 "$(jq length "$T/out")"
sha=$(sha256sum "$T/in/a.pcap" | cut -d' ' -f1)
expect_rc 0 "$CAPVAULT" info --json "${sha:0:12}"
check "info by sha prefix" "$sha" "$(jq -r .sha256 "$T/out")"
check "info name" "a.pcap" "$(jq -r .name "$T/out")"
expect_rc 0 "$CAPVAULT" info 1
grep -q '^packets  *500$' "$T/out" || fail "info text shows packets: $(cat "$T/out")"
expect_rc 1 "$CAPVAULT" info 999
grep -q "no capture with id 999" "$T/err" || fail "unknown id message: $(cat "$T/err")"
expect_rc 2 "$CAPVAULT" info

# The object is exactly the capture's bytes.
obj="$CAPVAULT_STORE/objects/${sha:0:2}/$sha"
cmp -s "$obj" "$T/in/a.pcap" || fail "object differs from the source"

# --move on the same file system links instead of copying, then removes the source.
"$MKCAP" --packets 50 --seed 9 -o "$CAPVAULT_STORE/../moved.pcap"
msha=$(sha256sum "$T/moved.pcap" | cut -d' ' -f1)
ino=$(stat -c %i "$T/moved.pcap")
expect_rc 0 "$CAPVAULT" import --move "$T/moved.pcap"
grep -q '(linked)' "$T/out" || fail "move on the same fs should link: $(cat "$T/out")"
[ -e "$T/moved.pcap" ] && fail "--move left the source"
check "linked inode" "$ino" "$(stat -c %i "$CAPVAULT_STORE/objects/${msha:0:2}/$msha")"

# A second process cannot open the store while one holds it.
expect_rc 0 "$CAPVAULT" stats --json
check "stats captures" 6 "$(jq .captures "$T/out")"

# A compressed capture cut short is a truncated capture, as a cut plain
# one is: its packets up to the cut are kept and the cut is reported with
# its offset; one cut before any packet came out fails, saying where.
"$MKCAP" --packets 200 --seed 9 -o "$T/whole.pcap"
gzip -c "$T/whole.pcap" >"$T/whole.pcap.gz"
head -c $(($(stat -c %s "$T/whole.pcap.gz") / 2)) "$T/whole.pcap.gz" >"$T/cut.pcap.gz"
expect_rc 0 "$CAPVAULT" import "$T/cut.pcap.gz"
grep -q "^imported .*cut.pcap.gz (truncated)" "$T/out" || fail "cut gzip: $(cat "$T/out" "$T/err")"
id_cut=$(awk '/^imported .*cut.pcap.gz/ { print $2 }' "$T/out")
"$CAPVAULT" info --json "$id_cut" >"$T/cut.json"
jq -e '.truncated and (.error | test("^offset [0-9]+: gzip stream ends early"))' "$T/cut.json" >/dev/null ||
	fail "cut gzip's record: $(jq -c '{truncated, error}' "$T/cut.json")"
n_cut=$(jq .packets "$T/cut.json")
checks=$((checks + 1))
[ "$n_cut" -gt 0 ] && [ "$n_cut" -lt 200 ] || fail "cut gzip kept $n_cut packets"
check "the kept packets are the first ones" "$n_cut" "$({ zcat "$T/cut.pcap.gz" 2>/dev/null || true; } | tcpdump -r - 2>/dev/null | wc -l)"
zstd -q -c "$T/whole.pcap" >"$T/whole.pcap.zst"
head -c 3000 "$T/whole.pcap.zst" >"$T/cut.pcap.zst"
expect_rc 1 "$CAPVAULT" import "$T/cut.pcap.zst"
grep -q "cut.pcap.zst: offset 3000: zstd stream ends early" "$T/out" || fail "cut zstd: $(cat "$T/out")"

# A tape of many files that are not captures: each is said on its line,
# and the lists kept for the summary stop at 10000 names (the rest are
# counted), so memory does not grow with the member count.
python3 - "$T/logs.tar" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w") as t:
    for i in range(10003):
        data = b"log line %d\n" % i
        info = tarfile.TarInfo("logs/%05d.log" % i)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
PY
expect_rc 0 "$CAPVAULT" import --json --tar "$T/logs.tar"
check "skipped sources listed" 10000 "$(jq '.skipped_sources | length' "$T/out")"
check "skipped sources counted past the list" 3 "$(jq .skipped_not_listed "$T/out")"
expect_rc 0 "$CAPVAULT" import --quiet --tar "$T/logs.tar"
grep -q "^  \.\.\. and 9903 more$" "$T/out" || fail "summary of 10003 skipped: $(tail -3 "$T/out")"

# Tar members with no data: a symlink or a FIFO is counted as skipped and
# named for what it is; folders and hard links (their data is their
# target's, read before them) are not sources.
"$MKCAP" --packets 20 --seed 31 -o "$T/member.pcap"
python3 - "$T/links.tar" "$T/member.pcap" <<'PY'
import sys, tarfile
with tarfile.open(sys.argv[1], "w") as t:
    d = tarfile.TarInfo("d"); d.type = tarfile.DIRTYPE; t.addfile(d)
    t.add(sys.argv[2], arcname="d/cap.pcap")
    for name, kind in (("d/link.pcap", tarfile.SYMTYPE), ("d/hard.pcap", tarfile.LNKTYPE),
                       ("d/fifo", tarfile.FIFOTYPE)):
        m = tarfile.TarInfo(name); m.type = kind; m.linkname = "d/cap.pcap"; t.addfile(m)
PY
expect_rc 0 "$CAPVAULT" import --json --tar "$T/links.tar"
check "tar links: imported" 1 "$(jq .imported "$T/out")"
check "tar links: skipped" '["'"$T"'/links.tar!d/link.pcap","'"$T"'/links.tar!d/fifo"]' \
	"$(jq -c .skipped_sources "$T/out")"
expect_rc 0 "$CAPVAULT" import --tar "$T/links.tar"
grep -q "^skipped    .*links.tar!d/link.pcap (a symbolic link)$" "$T/out" ||
	fail "tar symlink member: $(cat "$T/out")"

# What is not a file is named as such and left where it is, --move or not.
mkfifo "$T/fifo"
expect_rc 1 "$CAPVAULT" import --move "$T/fifo"
grep -q "fifo: a FIFO, not a capture file" "$T/out" || fail "FIFO: $(cat "$T/out")"
[ -p "$T/fifo" ] || fail "--move of a FIFO touched it"
if [ "$(id -u)" = 0 ]; then
	mknod -m 666 "$T/null" c 1 3
	expect_rc 1 "$CAPVAULT" import --move "$T/null"
	grep -q "null: a character device, not a capture file" "$T/out" || fail "device: $(cat "$T/out")"
	[ -c "$T/null" ] || fail "--move of a device touched it"
fi

# capinfos agrees on packets, times, link type, size and sha256.
# epoch_digits EPOCH DIGITS keeps DIGITS decimals, as capinfos -S prints them.
epoch_digits() {
	echo "${1%.*}.$(echo "${1#*.}" | cut -c1-"$2")"
}
if command -v capinfos >/dev/null; then
	for f in "$T/in/a.pcap" "$T/in/sub/b.pcapng" "$T/in/sub/c.pcap"; do
		s=$(sha256sum "$f" | cut -d' ' -f1)
		"$CAPVAULT" info --json "$s" > "$T/info.json"
		capinfos -T -r -c -s -a -e -E -H -S "$f" > "$T/capinfos.tsv"
		IFS=$'\t' read -r _ encap pkts size first last sha_ci _ < "$T/capinfos.tsv"
		digits=6
		[ "$(jq -r .time_precision "$T/info.json")" = nanoseconds ] && digits=9
		check "capinfos packets $f" "$pkts" "$(jq .packets "$T/info.json")"
		check "capinfos size $f" "$size" "$(jq .file_size "$T/info.json")"
		check "capinfos sha256 $f" "$sha_ci" "$(jq -r .sha256 "$T/info.json")"
		check "capinfos start $f" "$first" "$(epoch_digits "$(jq -r .earliest_packet_time_epoch "$T/info.json")" $digits)"
		check "capinfos end $f" "$last" "$(epoch_digits "$(jq -r .latest_packet_time_epoch "$T/info.json")" $digits)"
		check "capinfos encapsulation $f" "$encap" \
			"$(jq -r '.linktypes | if length > 1 then "per-packet" else .[0].name | ascii_downcase end' "$T/info.json" | sed 's/^en10mb$/ether/')"
	done
fi

finish
