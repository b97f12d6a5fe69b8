# shellcheck shell=bash
# rgw_lib.sh - a real Ceph RGW for the shell tests (tools/rgw-test), sourced
# after lib.sh (and daemon_lib.sh, when used).
# - rgw_start [--tls]: starts a single-node cluster in $T/rgw, exports
#   CAPVAULT_S3_ENDPOINT, _BUCKET, _REGION, _CREDENTIALS, AWS_ACCESS_KEY_ID,
#   AWS_SECRET_ACCESS_KEY (and with --tls CAPVAULT_S3_TLS_ENDPOINT and
#   CAPVAULT_S3_CA_FILE), and stops the cluster at exit, before the traps
#   already set (which remove $T). Exits 77 (skip) when Ceph is not
#   installed, 1 when it does not start.
# - rgw_stop: stops the whole cluster now; idempotent.
# - rgw_down / rgw_up: RGW alone is killed / back on the same ports with
#   the same objects (a store that is down, then back; rgw_up returns once
#   it answers). rgw_pause / rgw_resume: RGW frozen (SIGSTOP) / thawed: a
#   store that takes connections and never answers (time-outs).
#   rgw_refuse / rgw_accept: the test user is suspended (403 to all its
#   requests, as a wrong key gets) / enabled again.
# - s3 [CURL ARGS...]: curl with SigV4 for the test user.
# - rgw_object_store_config [KEY=VALUE...]: appends to $T/d.yaml the
#   object_store: section for this RGW, with these keys too (prefix,
#   cache_size, the time-outs).
RGW_TEST=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../tools" && pwd)/rgw-test
RGW_DIR=

rgw_stop() {
	[ -z "$RGW_DIR" ] || "$RGW_TEST" stop "$RGW_DIR"
}

rgw_start() {
	local rc=0 old=() prev=
	RGW_DIR=$T/rgw
	# `trap -p` quotes for the shell: (trap -- COMMAND EXIT) once parsed.
	eval "old=($(trap -p EXIT))"
	[ "${#old[@]}" -lt 3 ] || prev=${old[2]}
	# Installed first: a start interrupted half-way is stopped too.
	# shellcheck disable=SC2064
	trap "rgw_stop || true; $prev" EXIT
	"$RGW_TEST" start "$@" "$RGW_DIR" >"$T/rgw.env" 2>"$T/rgw.err" || rc=$?
	if [ "$rc" = 77 ]; then
		cat "$T/rgw.err"
		exit 77
	fi
	if [ "$rc" != 0 ]; then
		echo "FAIL: tools/rgw-test start failed ($rc):" >&2
		cat "$T/rgw.err" >&2
		exit 1
	fi
	. "$T/rgw.env"
}

rgw_down() { "$RGW_TEST" rgw-down "$RGW_DIR"; }
rgw_up() { "$RGW_TEST" rgw-up "$RGW_DIR"; }
rgw_pause() { "$RGW_TEST" rgw-pause "$RGW_DIR"; }
rgw_resume() { "$RGW_TEST" rgw-resume "$RGW_DIR"; }
rgw_refuse() { "$RGW_TEST" rgw-refuse "$RGW_DIR"; }
rgw_accept() { "$RGW_TEST" rgw-accept "$RGW_DIR"; }

s3() {
	curl -s --aws-sigv4 "aws:amz:$CAPVAULT_S3_REGION:s3" \
		--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
		-H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@"
}

rgw_object_store_config() {
	local kv
	{
		echo "object_store:"
		echo "  endpoint: $CAPVAULT_S3_ENDPOINT"
		echo "  bucket: $CAPVAULT_S3_BUCKET"
		echo "  region: $CAPVAULT_S3_REGION"
		echo "  credentials_file: $CAPVAULT_S3_CREDENTIALS"
		for kv in "$@"; do
			echo "  ${kv%%=*}: ${kv#*=}"
		done
	} >>"$T/d.yaml"
}
