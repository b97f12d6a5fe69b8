#!/bin/bash
# The S3 backend's unit test (tests/test_objstore_s3.c) against a real Ceph
# RGW, plain HTTP and TLS (tools/rgw-test); skips (77) without Ceph.
: "${OBJSTORE_S3_TEST:?path to test_objstore_s3}"
LIB_NO_STORE=1
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rgw_lib.sh"
rgw_start --tls
# Loopback only, whatever proxy the environment names.
export NO_PROXY=127.0.0.1,localhost,::1 no_proxy=127.0.0.1,localhost,::1
"$OBJSTORE_S3_TEST"
