#!/bin/bash
# The viewer's decoded packets (issue 19): GET /v1/decode/list pages
# through a capture and through the store exactly (no packet skipped or
# repeated, frame numbers where they are known), its columns are
# tshark's; GET /v1/decode/packet gives one packet's label tree and bytes;
# bad refs, filters and cursors get 400/404. Then the decoder is a
# wrapper that misbehaves on demand: killed from outside mid-run, hung
# (timeout), crashed (SIGSEGV), flooding (oversize), failing: each answers
# 502 naming what happened, and the daemon answers the next request. The
# wrapper also checks its sandbox: no network but loopback-less netns, no
# fork, no inherited fds or environment, an unwritable HOME, no core
# dumps, and sockets other than AF_UNIX refused.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"

command -v tshark >/dev/null || { echo "skipped: no tshark"; exit 77; }
command -v tcpdump >/dev/null || { echo "skipped: no tcpdump"; exit 77; }
TSHARK=$(command -v tshark)

STORE="$T/store"
DECODER="$TSHARK"
WARM=true
MAXOUT=64MiB
write_config() {
	cat > "$T/d.yaml" <<YAML
store: $STORE
jobs: 1
api:
  listen: ["127.0.0.1:$1"]
decoder:
  path: $DECODER
  timeout: 3s
  max_output: $MAXOUT
  warm: $WARM
YAML
}

# Two captures whose times overlap (a store-wide list merges them).
"$MKCAP" --packets 700 --seed 5 --hosts 6 -o "$T/a.pcap"
"$MKCAP" --packets 500 --seed 6 --hosts 6 --interval-us 1300 -o "$T/b.pcap"
"$CAPVAULT" import --store "$STORE" --quiet "$T/a.pcap" "$T/b.pcap" >/dev/null
TOKEN=$("$CAPVAULT" token add reader --store "$STORE" --scopes read 2>/dev/null)
auth=(-H "Authorization: Bearer $TOKEN")
start_daemon

# get NAME PATH: the reply body in $T/NAME, its status printed.
get() {
	curl -s -o "$T/$1" -w '%{http_code}' --max-time 30 "${auth[@]}" "$U$2" || echo 000
}

# pages NAME QUERY LIMIT: every page of the list into $T/NAME.all (one
# packet per line), the number of pages in $T/NAME.pages.
pages() {
	local name=$1 q=$2 limit=$3 cursor= n=0 code
	: > "$T/$name.all"
	while :; do
		code=$(get page "/v1/decode/list?$q&limit=$limit${cursor:+&cursor=$cursor}")
		[ "$code" = 200 ] || { fail "$name page $n: HTTP $code: $(head -c 300 "$T/page")"; break; }
		jq -c '.packets[]' "$T/page" >> "$T/$name.all"
		n=$((n + 1))
		cursor=$(jq -r '.next // empty' "$T/page")
		[ -n "$cursor" ] || break
		[ "$n" -lt 100 ] || { fail "$name: no end after 100 pages"; break; }
	done
	echo "$n" > "$T/$name.pages"
}

# --- the first page of capture 1: tshark's own columns, frames 1..100
code=$(get first "/v1/decode/list?capture=1")
check "first page: HTTP status" 200 "$code"
check "first page: packets" 100 "$(jq '.packets | length' "$T/first")"
check "first page: decoder" "tshark" "$(jq -r '.decoder' "$T/first" | cut -d' ' -f1)"
check "first page: frames" "$(seq 1 100 | tr '\n' ' ')" "$(jq -r '.packets[].frame' "$T/first" | tr '\n' ' ')"
"$TSHARK" -r "$T/a.pcap" -n -c 100 -T fields -e _ws.col.Protocol -e _ws.col.Info > "$T/want.cols" 2>/dev/null
jq -r '.packets[] | [.protocol, .info] | @tsv' "$T/first" > "$T/got.cols"
diff "$T/want.cols" "$T/got.cols" >&2 || fail "first page: columns differ from tshark's"
check "first page: first ref" "1:24" "$(jq -r '.packets[0].ref' "$T/first")"
check "first page: first time" "2023-11-14T22:13:20.000000000Z" "$(jq -r '.packets[0].time' "$T/first")"
[ "$(jq -r '.next' "$T/first")" != null ] || fail "first page: no next cursor"

# --- paging capture 1: every packet once, frames 1..700
pages cap1 "capture=1" 97
check "capture 1 pages" 8 "$(cat "$T/cap1.pages")"
check "capture 1 packets" 700 "$(wc -l < "$T/cap1.all")"
check "capture 1 frames" "$(seq 1 700 | md5sum)" "$(jq -r '.frame' "$T/cap1.all" | md5sum)"
check "capture 1 refs unique" 700 "$(jq -r '.ref' "$T/cap1.all" | sort -u | wc -l)"

# --- paging the store with a filter: what tcpdump gives, merged by time
pages tcp "filter=tcp" 150
want=$(( $(tcpdump -nr "$T/a.pcap" tcp 2>/dev/null | wc -l) + $(tcpdump -nr "$T/b.pcap" tcp 2>/dev/null | wc -l) ))
check "tcp packets across captures" "$want" "$(wc -l < "$T/tcp.all")"
check "tcp refs unique" "$want" "$(jq -r '.ref' "$T/tcp.all" | sort -u | wc -l)"
check "tcp: both captures" "1 2" "$(jq -r '.capture' "$T/tcp.all" | sort -u | tr '\n' ' ' | sed 's/ $//')"
check "tcp: in time order" "" "$(jq -r '.time_ns' "$T/tcp.all" | sort -c -n 2>&1 | head -1)"
check "tcp: frames unknown" "null" "$(jq -r '.frame' "$T/tcp.all" | sort -u)"

# --- one packet's detail: the 5th of capture 1
ref=$(sed -n 5p "$T/cap1.all" | jq -r .ref)
code=$(get detail "/v1/decode/packet?ref=$ref")
check "detail: HTTP status" 200 "$code"
check "detail: ref" "$ref" "$(jq -r .ref "$T/detail")"
"$TSHARK" -r "$T/a.pcap" -n -Y frame.number==5 -V 2>/dev/null | grep -v '^ ' | grep -v '^$' > "$T/want.tree"
check "detail: Ethernet line" "$(sed -n 2p "$T/want.tree")" "$(jq -r '.tree[1].label' "$T/detail")"
check "detail: IP line" "$(sed -n 3p "$T/want.tree")" "$(jq -r '.tree[2].label' "$T/detail")"
jq -e '.tree[1].children | length > 0' "$T/detail" >/dev/null || fail "detail: Ethernet has no children"
dst=$("$TSHARK" -r "$T/a.pcap" -Y frame.number==5 -T fields -e eth.dst 2>/dev/null | tr -d ':')
check "detail: hex starts with the destination" "$dst" "$(jq -r '.hex[0:12]' "$T/detail")"
check "detail: hex length" "$(( 2 * $(jq .captured_length "$T/detail") ))" "$(jq -r '.hex | length' "$T/detail")"

# --- bad requests
check "ref not a ref" 400 "$(get bad "/v1/decode/packet?ref=x")"
check "no ref" 400 "$(get bad "/v1/decode/packet")"
check "ref inside a record" 404 "$(get bad "/v1/decode/packet?ref=1:30")"
check "ref to no capture" 404 "$(get bad "/v1/decode/packet?ref=99:24")"
check "bad filter" 400 "$(get bad "/v1/decode/list?filter=tcp+and")"
grep -q '"error":"bad_filter"' "$T/bad" || fail "bad filter: $(head -c 300 "$T/bad")"
check "bad cursor" 400 "$(get bad "/v1/decode/list?cursor=1:2")"
check "limit 0" 400 "$(get bad "/v1/decode/list?limit=0")"
check "limit 1001" 400 "$(get bad "/v1/decode/list?limit=1001")"
check "no token" 401 "$(curl -s -o /dev/null -w '%{http_code}' "$U/v1/decode/list")"

# --- a TLS capture uploaded with its key log (the CloudShark keylog
# part): the list shows the HTTP inside. The traffic is made here, on
# loopback: openssl's server, curl writing its keys, tcpdump on lo.
tls_capture() {
	local port=$((20000 + RANDOM % 20000)) spid dpid_
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/k.pem" -out "$T/c.pem" -days 1 \
		-subj /CN=localhost 2>/dev/null || return 1
	openssl s_server -quiet -accept "$port" -cert "$T/c.pem" -key "$T/k.pem" -www \
		>/dev/null 2>&1 &
	spid=$!
	timeout 20 tcpdump -i lo -U -w "$T/tls.pcap" "tcp port $port" 2>/dev/null &
	dpid_=$!
	sleep 1
	SSLKEYLOGFILE="$T/tls.keys" curl -sk --tls-max 1.2 -o /dev/null "https://127.0.0.1:$port/" || true
	sleep 1
	kill "$dpid_" "$spid" 2>/dev/null || true
	wait "$dpid_" "$spid" 2>/dev/null || true
	[ -s "$T/tls.keys" ] && [ "$(tcpdump -r "$T/tls.pcap" 2>/dev/null | wc -l)" -gt 5 ]
}
# (grep without -q after a pipe: -q's early exit would make the writer die
# of SIGPIPE, and pipefail would count that as no match)
if [ "$(id -u)" = 0 ] && command -v openssl >/dev/null && tls_capture; then
	tshark -r "$T/tls.pcap" -n 2>/dev/null | grep 'HTTP' >/dev/null &&
		fail "tls: tshark sees HTTP without the keys: no test"
	CS=$("$CAPVAULT" token add cs --store "$STORE" --scopes read,upload --cloudshark 2>/dev/null)
	code=$(curl -s -o "$T/up" -w '%{http_code}' -F "file=@$T/tls.pcap" -F "filename=tls.pcap" \
		-F "keylog=@$T/tls.keys" "$U/api/v1/$CS/upload")
	check "tls upload: HTTP status" 200 "$code"
	tid=$(jq -r .id "$T/up")
	check "tls list: HTTP status" 200 "$(get tls "/v1/decode/list?capture=$tid")"
	jq -r '.packets[] | .protocol + " " + .info' "$T/tls" | grep '^HTTP GET / HTTP/1.1' >/dev/null ||
		fail "tls: no decrypted HTTP request: $(jq -r '.packets[] | .protocol + " " + .info' "$T/tls" | head -20)"
	tref=$(jq -r '[.packets[] | select(.protocol == "HTTP")][0].ref' "$T/tls")
	check "tls detail: HTTP status" 200 "$(get tlsd "/v1/decode/packet?ref=$tref")"
	jq -r '.. | .label? // empty' "$T/tlsd" | grep '^Hypertext Transfer Protocol' >/dev/null ||
		fail "tls detail of $tref: no HTTP in the tree: $(jq -c '[.tree[].label]' "$T/tlsd" | head -c 600); list: $(jq -r '.packets[] | .ref + " " + .protocol + " " + .info' "$T/tls" | head -20)"
else
	echo "TLS key log check skipped: needs root (tcpdump on lo) and openssl"
fi
stop_daemon

# --- a decoder that misbehaves on demand; warm spares off, so that each
# request starts the wrapper afresh and reads the mode then
MODE="$T/mode"
cat > "$T/wrapper" <<EOF
#!/bin/bash
# builtins only: the sandbox refuses fork
[ "\${1:-}" = -v ] && exec "$TSHARK" "\$@"
read -r mode < "$MODE"
case \$mode in
ok) exec "$TSHARK" "\$@" ;;
kill) exec -a "$T/victim" sleep 30 ;; # no file to write its pid in: it may write none
hang) exec sleep 30 ;;
segv) exec /usr/bin/python3 -c 'import ctypes; ctypes.string_at(0)' ;;
flood) exec yes flood ;;
fail) echo "wrapper: no such dissector" >&2; exit 3 ;;
net) exec /usr/bin/python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_STREAM)' ;;
fork) /bin/true; exit 4 ;;
check)
	for f in /proc/self/fd/*; do # 3: the glob's; 255: bash's script
		n=\${f##*/}
		[ "\$n" -le 3 ] || [ "\$n" = 255 ] || { echo "check: fd \$n inherited" >&2; exit 5; }
	done
	[ -z "\${DECODE_TEST_SECRET:-}" ] || { echo "check: environment inherited" >&2; exit 5; }
	[ "\$HOME" != /root ] && ! : 2>/dev/null > "\$HOME/x" || { echo "check: HOME \$HOME writable" >&2; exit 5; }
	mapfile -t limits < /proc/self/limits
	[[ "\${limits[*]}" =~ "Max core file size"\ +0\ +0 ]] || { echo "check: core dumps allowed" >&2; exit 5; }
	[[ "\${limits[*]}" =~ "Max file size"\ +0\ +0 ]] || { echo "check: files may be written" >&2; exit 5; }
	mapfile -t ifs < /proc/self/net/dev
	[ "\${#ifs[@]}" -le 3 ] || { echo "check: network interfaces: \${#ifs[@]}" >&2; exit 5; }
	exec "$TSHARK" "\$@" ;;
esac
EOF
chmod +x "$T/wrapper"
DECODER="$T/wrapper"
WARM=false
MAXOUT=64KiB
echo ok > "$MODE"
start_daemon DECODE_TEST_SECRET=leaked

# fault NAME MODE STATUS ERROR TEXT: the list in MODE answers STATUS with
# ERROR and TEXT in its message; then a good list works.
fault() {
	echo "$2" > "$MODE"
	code=$(get "$1" "/v1/decode/list?capture=1&limit=20")
	check "$1: HTTP status" "$3" "$code"
	grep -q "\"error\":\"$4\"" "$T/$1" || fail "$1: no $4 in $(head -c 300 "$T/$1")"
	grep -q -- "$5" "$T/$1" || fail "$1: no '$5' in $(head -c 300 "$T/$1")"
	kill -0 "$DPID" 2>/dev/null || { fail "$1: the daemon died"; finish; exit 1; }
	echo ok > "$MODE"
	check "$1: the next list" 200 "$(get after "/v1/decode/list?capture=1&limit=20")"
	check "$1: the next list's packets" 20 "$(jq '.packets | length' "$T/after")"
}

check "wrapped: list" 200 "$(get wrapped "/v1/decode/list?capture=1&limit=20")"
fault hang hang 502 decoder_timeout "timed out after 3000 ms"
fault flood flood 502 decoder_output_too_large "more than 65536 bytes"
fault fail fail 502 decoder_failed "exited with status 3 while decoding a packet list: wrapper: no such dissector"
[ -x /usr/bin/python3 ] && fault segv segv 502 decoder_crashed "signal 11 (SIGSEGV)"
[ -x /usr/bin/python3 ] && fault net net 502 decoder_failed "Permission denied"
fault fork fork 502 decoder_failed "fork"
echo check > "$MODE"
code=$(get check "/v1/decode/list?capture=1&limit=20")
check "sandbox check: HTTP status" 200 "$code"
[ "$code" = 200 ] || fail "sandbox check: $(head -c 300 "$T/check")"

# killed from outside in the middle of a run (as the OOM killer would)
echo kill > "$MODE"
curl -s -o "$T/killed" -w '%{http_code}' --max-time 30 "${auth[@]}" \
	"$U/v1/decode/packet?ref=$ref" > "$T/killed.code" &
cpid=$!
wait_for "the decoder to start" pgrep -f -- "^$T/victim" >/dev/null
kill -9 "$(pgrep -f -- "^$T/victim")"
wait "$cpid" || true
check "killed: HTTP status" 502 "$(cat "$T/killed.code")"
grep -q '"error":"decoder_crashed"' "$T/killed" || fail "killed: $(head -c 300 "$T/killed")"
grep -q 'signal 9 (SIGKILL)' "$T/killed" || fail "killed: $(head -c 300 "$T/killed")"
echo ok > "$MODE"
check "after the kill: detail" 200 "$(get detail2 "/v1/decode/packet?ref=$ref")"
check "after the kill: same tree" "$(jq -c .tree "$T/detail")" "$(jq -c .tree "$T/detail2")"
logged "decoder: a packet: tshark" || logged "decoder: a packet:" || fail "no decoder line in the log"
stop_daemon
finish
