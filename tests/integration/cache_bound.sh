#!/usr/bin/env bash
# cache_bound.sh - an object store cache bound larger than the file
# system that holds it (issue 18): capvaultd says at start that the
# setting is past the file system (the cache stops at its free-space
# floor instead, see cache_floor.sh), naming it; one that fits is not
# warned about.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/daemon_lib.sh"

mkdir -p "$T/in"
printf '[default]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = secret\n' >"$T/cred"
chmod 600 "$T/cred"
cache_size=1EiB
write_config() {
	write_inbox_config "$CAPVAULT_STORE" "$1"
	cat >>"$T/d.yaml" <<EOC
object_store:
  endpoint: http://127.0.0.1:9
  bucket: capvault
  region: us-east-1
  credentials_file: $T/cred
  cache_size: $cache_size
EOC
}
start_daemon
stop_daemon
grep -q "cache_size .* is more than the file system" "$T/d.log" ||
	fail "no warning for a cache bound past the file system: $(tail -5 "$T/d.log")"
: >"$T/d.log"
cache_size=1MiB
start_daemon
stop_daemon
grep -q "is more than the file system" "$T/d.log" && fail "a cache that fits was warned about"
finish
