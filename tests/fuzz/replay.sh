#!/bin/bash
# Replays every fuzz target's seeds and regression inputs. The capture
# seeds are generated here (pcap, pcapng, compressed, truncated, corrupt)
# and also written to $FUZZ_SEEDS_OUT when set, for the libFuzzer runs.
set -euo pipefail
T=$(mktemp -d /tmp/capvault-fuzz.XXXXXX)
trap 'rm -rf "$T"' EXIT
seeds=${FUZZ_SEEDS_OUT:-$T/capfile}
mkdir -p "$seeds"
n=0
for args in "--packets 20" "--packets 20 --nsec --big-endian" "--format pcapng --packets 20" \
	"--packets 10 --gzip" "--packets 10 --zstd" "--packets 10 --truncate" \
	"--packets 10 --corrupt" "--format pcapng --packets 10 --truncate" \
	"--packets 10 --linktype 101"; do
	n=$((n + 1))
	# shellcheck disable=SC2086
	"$MKCAP" $args --seed $n -o "$T/seed$n"
	# a leading chunk-size byte, as fuzz_capfile reads it
	{ printf '\x05'; cat "$T/seed$n"; } > "$seeds/seed$n"
done
"$REPLAY_CAPFILE" "$seeds" "$FUZZ_DIR/regressions/capfile"
"$REPLAY_CONFIG" "$CONFIG_CASES" "$FUZZ_DIR/regressions/config"
"$REPLAY_PLANNER" "$FUZZ_DIR/seeds/planner" "$FUZZ_DIR/regressions/planner"
"$REPLAY_API" "$FUZZ_DIR/seeds/api" "$FUZZ_DIR/regressions/api"
