#!/bin/bash
# Bulk import end to end: a folder tree, tars of it (plain, gzip, zstd,
# xz, bzip2) from a file and from standard input all give the same
# catalog; a tar with a corrupt and a non-capture member imports the
# rest and names both; an import killed with -9 and re-run with its
# journal stores every capture once; --dry-run writes nothing;
# --tags-from-path tags.
. "$(dirname "$0")/lib.sh"

# shas STORE: the sorted SHA-256 list of the store's catalog.
shas() {
	"$CAPVAULT" ls --store "$1" --json | jq -r '.[].sha256' | sort
}

mkdir -p "$T/tree/site-a/2023" "$T/tree/site-b" "$T/tree/deep/x/y"
"$MKCAP" --packets 300 --seed 1 -o "$T/tree/top.pcap"
"$MKCAP" --packets 200 --seed 2 -o "$T/tree/site-a/2023/a1.pcap"
"$MKCAP" --format pcapng --packets 150 --seed 3 -o "$T/tree/site-a/2023/a2.pcapng"
"$MKCAP" --packets 120 --seed 4 --gzip -o "$T/tree/site-b/b1.pcap.gz"
"$MKCAP" --packets 110 --seed 5 --zstd -o "$T/tree/site-b/b2.cap"
"$MKCAP" --packets 90 --nsec --big-endian --seed 6 -o "$T/tree/deep/x/y/d1.pcap"
printf 'notes about the captures\n' > "$T/tree/site-b/README.txt"
ncaps=6

# The folder: six captures, the README fails (a named file must be a
# capture), exactly as before.
"$CAPVAULT" init --store "$T/s-dir" >/dev/null
expect_rc 1 "$CAPVAULT" import --store "$T/s-dir" "$T/tree"
check "folder imported" "$ncaps" "$(grep -c '^imported' "$T/out")"
check "folder failed" 1 "$(grep -c '^FAILED' "$T/out")"
check "folder summary" "6 imported, 0 duplicates, 1 failed; 970 packets" \
	"$(tail -1 "$T/out" | cut -d';' -f1-2 | sed 's/, [0-9]* bytes//')"
shas "$T/s-dir" > "$T/want"
check "folder catalog size" "$ncaps" "$(wc -l < "$T/want")"
expected=$(cd "$T/tree" && for f in $(find . -type f ! -name README.txt | sort); do
	case "$f" in *.gz) gzip -dc "$f" ;; *.cap) zstd -qdc "$f" ;; *) cat "$f" ;; esac | sha256sum | cut -d' ' -f1
done | sort)
check "catalog is the captures' sha256" "$expected" "$(cat "$T/want")"

# Tars of the same tree, each into a fresh store, from the file and
# from standard input: the same catalog, the README skipped, exit 0.
tar -C "$T/tree" -cf "$T/tree.tar" .
gzip -c "$T/tree.tar" > "$T/tree.tar.gz"
zstd -q -c "$T/tree.tar" > "$T/tree.tar.zst"
xz -c "$T/tree.tar" > "$T/tree.tar.xz"
bzip2 -c "$T/tree.tar" > "$T/tree.tbz"
tar -C "$T/tree" --format=pax -cf "$T/tree-pax.tar" .
tar -C "$T/tree" --format=ustar -cf "$T/tree-ustar.tar" .
n=0
for a in tree.tar tree.tar.gz tree.tar.zst tree.tar.xz tree.tbz tree-pax.tar tree-ustar.tar; do
	n=$((n + 1))
	"$CAPVAULT" init --store "$T/s-file$n" >/dev/null
	expect_rc 0 "$CAPVAULT" import --store "$T/s-file$n" --tar "$T/$a"
	check "$a: imported" "$ncaps" "$(grep -c '^imported' "$T/out")"
	check "$a: skipped" "1" "$(grep -c '^skipped .*README.txt (not a capture)' "$T/out")"
	check "$a: catalog" "$(cat "$T/want")" "$(shas "$T/s-file$n")"
	rc=0
	"$CAPVAULT" init --store "$T/s-pipe$n" >/dev/null
	"$CAPVAULT" import --store "$T/s-pipe$n" --tar - < "$T/$a" > "$T/out" 2>&1 || rc=$?
	check "$a via stdin: rc" 0 "$rc"
	check "$a via stdin: catalog" "$(cat "$T/want")" "$(shas "$T/s-pipe$n")"
done
# A tar named without --tar is recognised by its content, whatever its name.
cp "$T/tree.tar.zst" "$T/archive.bin"
"$CAPVAULT" init --store "$T/s-auto" >/dev/null
expect_rc 0 "$CAPVAULT" import --store "$T/s-auto" "$T/archive.bin"
check "auto-detected tar" "$(cat "$T/want")" "$(shas "$T/s-auto")"
grep -q 'archive.bin!./site-a/2023/a1.pcap' "$T/out" || fail "member named archive!member: $(head -3 "$T/out")"
# A stream piped from tar itself, read in small blocks as from a tape.
rc=0
"$CAPVAULT" init --store "$T/s-block" >/dev/null
tar -C "$T/tree" -cf - . | "$CAPVAULT" import --store "$T/s-block" --block-size 512 --tar - > "$T/out" 2>&1 || rc=$?
check "tar -c | import --block-size 512" 0 "$rc"
check "block-size catalog" "$(cat "$T/want")" "$(shas "$T/s-block")"

# A corrupt member (a pcap header then a record longer than the file,
# not the last) and a non-capture member: the rest import, the summary
# names both, exit 1.
mkdir -p "$T/bad"
cp "$T/tree/top.pcap" "$T/tree/site-a/2023/a1.pcap" "$T/bad/"
head -c 24 "$T/tree/top.pcap" > "$T/bad/broken.pcap"
printf '\x01\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\x7f\xff\xff\xff\x7f' >> "$T/bad/broken.pcap"
head -c 4000 /dev/urandom >> "$T/bad/broken.pcap"
printf '\x1f\x8b\x08\x00garbage' > "$T/bad/broken.pcap.gz"
echo '#!/bin/sh' > "$T/bad/script.sh"
tar -C "$T/bad" -czf "$T/bad.tgz" broken.pcap broken.pcap.gz script.sh top.pcap a1.pcap
"$CAPVAULT" init --store "$T/s-bad" >/dev/null
expect_rc 1 "$CAPVAULT" import --store "$T/s-bad" --tar "$T/bad.tgz"
check "bad tar: imported" 2 "$(grep -c '^imported' "$T/out")"
check "bad tar: failed" 2 "$(grep -c '^FAILED' "$T/out")"
grep -q '^FAILED .*bad.tgz!broken.pcap: ' "$T/out" || fail "corrupt member named: $(cat "$T/out")"
sed -n '/^failed:$/,/^skipped/p' "$T/out" | grep '^  .*bad.tgz!broken.pcap: ' >/dev/null ||
	fail "summary names the corrupt member: $(cat "$T/out")"
sed -n '/^skipped (not captures):$/,$p' "$T/out" | grep '^  .*bad.tgz!script.sh$' >/dev/null ||
	fail "summary names the skipped member: $(cat "$T/out")"
check "bad tar summary" "2 imported, 0 duplicates, 2 failed; 500 packets" \
	"$(tail -1 "$T/out" | cut -d';' -f1-2 | sed 's/, [0-9]* bytes//')"
"$CAPVAULT" init --store "$T/s-bad2" >/dev/null
expect_rc 1 "$CAPVAULT" import --store "$T/s-bad2" --json --tar "$T/bad.tgz"
check "json failed" 2 "$(jq .failed "$T/out")"
check "json skipped" '["'"$T"'/bad.tgz!script.sh"]' "$(jq -c .skipped_sources "$T/out")"
check "json failure source" "$T/bad.tgz!broken.pcap" "$(jq -r '.failures[0].source' "$T/out")"
# A truncated archive: the members before the cut import, the archive fails.
tar -C "$T/tree" -cf "$T/cut-src.tar" site-a/2023/a1.pcap deep/x/y/d1.pcap top.pcap
head -c $(($(stat -c %s "$T/cut-src.tar") - 30000)) "$T/cut-src.tar" > "$T/cut.tar"
"$CAPVAULT" init --store "$T/s-cut" >/dev/null
expect_rc 1 "$CAPVAULT" import --store "$T/s-cut" --tar "$T/cut.tar"
check "members before the cut import" 2 "$(grep -c '^imported' "$T/out")"
check "the cut member fails" 1 "$(grep -c '^FAILED .*cut.tar!top.pcap: ' "$T/out")"

# --dry-run: counts and bytes, and the store is not even created.
expect_rc 0 "$CAPVAULT" import --store "$T/s-dry" --dry-run --tar "$T/tree.tar.gz"
[ -e "$T/s-dry" ] && fail "--dry-run created the store"
check "dry run line" "dry run: 6 captures" "$(tail -1 "$T/out" | cut -d, -f1)"
check "dry run listing" "$ncaps" "$(grep -c '^would import' "$T/out")"
expect_rc 1 "$CAPVAULT" import --store "$T/s-dry" --dry-run --json "$T/tree"
check "dry run json captures" "$ncaps" "$(jq .imported "$T/out")"
check "dry run json failed (README)" 1 "$(jq .failed "$T/out")"
[ -e "$T/s-dry" ] && fail "--dry-run created the store"

# --tags-from-path: folder names inside the source become tags, the same
# from the folder and from the tar.
for src in dir tar; do
	if [ $src = dir ]; then
		"$CAPVAULT" init --store "$T/s-tags-$src" >/dev/null
		"$CAPVAULT" import --store "$T/s-tags-$src" --tags lab --tags-from-path "$T/tree" > /dev/null || true
	else
		"$CAPVAULT" init --store "$T/s-tags-$src" >/dev/null
		"$CAPVAULT" import --store "$T/s-tags-$src" --tags lab --tags-from-path --tar "$T/tree.tar" > /dev/null
	fi
	"$CAPVAULT" ls --store "$T/s-tags-$src" --json |
		jq -r '.[] | .name + " " + (.tags | sort | join(","))' | sort > "$T/tags-$src"
done
check "tags from the folder" "a1.pcap 2023,lab,site-a
a2.pcapng 2023,lab,site-a
b1.pcap.gz lab,site-b
b2.cap lab,site-b
d1.pcap deep,lab,x,y
top.pcap lab" "$(cat "$T/tags-dir")"
check "tags from the tar" "$(cat "$T/tags-dir")" "$(cat "$T/tags-tar")"

# --from-list and --jobs: the same catalog; --follow off by default.
ln -s "$T/tree/top.pcap" "$T/tree/site-b/link.pcap"
find "$T/tree" -name '*.pcap*' -type f | sort > "$T/list"
"$CAPVAULT" init --store "$T/s-list" >/dev/null
expect_rc 0 "$CAPVAULT" import --store "$T/s-list" --jobs 3 --from-list "$T/list"
check "from-list catalog size" 5 "$(shas "$T/s-list" | wc -l)"
"$CAPVAULT" init --store "$T/s-nofollow" >/dev/null
expect_rc 1 "$CAPVAULT" import --store "$T/s-nofollow" --jobs 4 "$T/tree"
check "links not followed" "$ncaps" "$(grep -c '^imported' "$T/out")"
"$CAPVAULT" init --store "$T/s-follow" >/dev/null
expect_rc 1 "$CAPVAULT" import --store "$T/s-follow" --follow "$T/tree"
check "links followed" 1 "$(grep -c '^duplicate' "$T/out")"
rm "$T/tree/site-b/link.pcap"

# Usage errors exit 2.
expect_rc 2 "$CAPVAULT" import --jobs 0 "$T/tree"
expect_rc 2 "$CAPVAULT" import --tar - --from-list -
expect_rc 2 "$CAPVAULT" import

# Resume: kill -9 a journaled import part way, re-run the same command:
# every capture once, none missing. Captures big enough that the kill
# lands inside the run.
mkdir -p "$T/many/sub"
for i in $(seq 1 60); do
	"$MKCAP" --packets 3000 --seed $((100 + i)) -o "$T/many/sub/m$i.pcap"
done
tar -C "$T/many" -cf "$T/many.tar" .
for kind in dir tar; do
	store="$T/s-resume-$kind" journal="$T/journal-$kind"
	"$CAPVAULT" init --store "$store" >/dev/null
	if [ $kind = dir ]; then args=("$T/many"); else args=(--tar "$T/many.tar"); fi
	"$CAPVAULT" import --store "$store" --journal "$journal" --jobs 2 "${args[@]}" \
		> "$T/resume1" 2>&1 &
	pid=$!
	for _ in $(seq 1 400); do
		[ -f "$journal" ] && [ "$(wc -l < "$journal")" -ge 15 ] && break
		sleep 0.02
	done
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	[ -f "$journal" ] || { fail "$kind: no journal: $(cat "$T/resume1")"; continue; }
	done_before=$(wc -l < "$journal")
	[ "$done_before" -lt 60 ] || fail "$kind: the kill came after the end ($done_before lines)"
	expect_rc 0 "$CAPVAULT" import --store "$store" --journal "$journal" --jobs 2 "${args[@]}"
	check "$kind: resumed skips the journal" "$done_before" \
		"$(tail -1 "$T/out" | sed 's/.*, \([0-9]*\) already in the journal/\1/')"
	check "$kind: every capture once" 60 "$(shas "$store" | uniq | wc -l)"
	check "$kind: no capture twice" 60 "$("$CAPVAULT" ls --store "$store" --json | jq length)"
	check "$kind: journal complete" 60 "$(cut -f3 "$journal" | sort -u | wc -l)"
	expect_rc 0 "$CAPVAULT" import --store "$store" --journal "$journal" "${args[@]}"
	check "$kind: third run does nothing" "0 imported, 0 duplicates, 0 failed" \
		"$(tail -1 "$T/out" | cut -d';' -f1)"
done

finish
