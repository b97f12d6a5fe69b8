#!/bin/bash
# Hostile input through capvaultd (DESIGN.md invariants 1 and 6): generated
# captures of every format, small files of $CAPVAULT_CORPUS when set, and
# mutated versions of them (bit flips, truncations, a huge length field),
# at most HOSTILE_MAX (200) files, moved into a watched folder at once.
# The daemon neither crashes nor hangs (bounded wait), and each file ends
# either imported (gone, its capture in the catalog) or in .failed with a
# .error note. fsck passes afterwards.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/../integration/daemon_lib.sh"

MAX=${HOSTILE_MAX:-200}
mkdir -p "$T/seed" "$T/stage" "$T/in"
i=0
for args in "" "--format pcapng" "--nsec" "--big-endian" "--gzip" "--zstd" "--format pcapng --zstd" \
	"--truncate"; do
	i=$((i + 1))
	# shellcheck disable=SC2086
	"$MKCAP" --packets 60 --seed "$i" $args -o "$T/seed/gen$i.cap"
done
if [ -n "${CAPVAULT_CORPUS:-}" ] && [ -d "$CAPVAULT_CORPUS" ]; then
	find "$CAPVAULT_CORPUS" -type f -size -2M | sort >"$T/corpus.list"
	# A spread of 30: every k-th file.
	k=$(($(wc -l <"$T/corpus.list") / 30 + 1))
	awk -v k="$k" 'NR % k == 0' "$T/corpus.list" | while read -r f; do
		cp "$f" "$T/seed/corpus-$(basename "$f")"
	done
fi

# Mutants: for each seed, 3 bit flips, 3 truncations, a huge length at the
# first record (pcap incl_len / pcapng block length), and the seed itself.
python3 - "$T/seed" "$T/stage" "$MAX" <<'PY'
import os, random, sys
seed_dir, out_dir, cap = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(8)
n = 0
def put(name, data):
    global n
    if n < cap:
        open(os.path.join(out_dir, "%03d-%s" % (n, name)), "wb").write(data)
        n += 1
for f in sorted(os.listdir(seed_dir)):
    d = open(os.path.join(seed_dir, f), "rb").read()
    put(f, d)
    for k in range(3):
        b = bytearray(d)
        if b:
            p = rng.randrange(min(len(b), 4096))
            b[p] ^= 1 << rng.randrange(8)
        put("flip%d-%s" % (k, f), bytes(b))
    for cut in (24, len(d) // 2, len(d) - 1):
        if 0 < cut < len(d):
            put("cut%d-%s" % (cut, f), d[:cut])
    b = bytearray(d)
    if len(b) >= 40:
        b[32:36] = b"\xff\xff\xff\x7f"   # pcap: first record's incl_len
        b[4:8] = b"\xff\xff\xff\x7f" if d[:4] == b"\x0a\x0d\x0d\x0a" else b[4:8]
        put("huge-" + f, bytes(b))
PY
total=$(ls "$T/stage" | wc -l)
cat >"$T/d.yaml" <<YAML
store: $T/store
jobs: 2
import:
  - path: $T/in
    after_import: delete
    settle_time: 0
api:
  listen: []
YAML
start_daemon
mv "$T/stage"/* "$T/in/"
pending() { find "$T/in" -path "$T/in/.failed" -prune -o -type f -print | wc -l; }
for i in $(seq 600); do
	[ "$(pending)" = 0 ] && break
	kill -0 "$DPID" 2>/dev/null || break
	sleep 0.1
done
check "daemon alive after $total hostile files" yes "$(kill -0 "$DPID" 2>/dev/null && echo yes)"
check "every file handled within 60 s" 0 "$(pending)"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --unix-socket "$T/store/capvault.sock" \
	"http://x/v1/packets?count=1" || true)
check "queries still served" 200 "$code"
stop_daemon
failed=0
for f in "$T/in/.failed"/*; do
	case $f in *.error) continue ;; esac
	[ -e "$f" ] || continue
	failed=$((failed + 1))
	[ -s "$f.error" ] || fail "$(basename "$f") in .failed without a note"
done
imported=$(grep -c "^<6>capvaultd: \(imported\|duplicate\) " "$T/d.log" || true)
check "each file imported or kept aside" "$total" "$((imported + failed))"
echo "$total files: $imported imported or duplicates, $failed kept aside"
expect_rc 0 "$CAPVAULT" fsck --store "$T/store"
finish
