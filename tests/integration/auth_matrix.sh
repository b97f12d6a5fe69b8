#!/bin/bash
# Who may call what: every route of api/api.c's routes[] (read from the
# source, so a new route without an entry here fails), native and
# CloudShark, called with no token, a bad token and a token of each scope
# (read, upload, delete, admin): 401, 403 or success as the route's scope
# says. Then issue 15.13: a tag change that can lead to a deletion (a
# retention policy's tag, the protect tag) needs the delete scope, other
# tags only upload; issue 15.15: no reply echoes a CloudShark token; and
# issue 15.17: every change leaves one audit line (token, client, capture
# id and sha256), and no secret reaches the log.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"

command -v python3 >/dev/null || { echo "python3 missing"; exit 77; }

STORE="$T/store"
write_config() {
	cat > "$T/d.yaml" <<YAML
store: $STORE
jobs: 1
retention:
  protect_tag: keep
  policies:
    - name: scratch
      tags: [scratch]
      max_age: 1d
api:
  listen: ["127.0.0.1:$1"]
  timeout: 10s
YAML
}

for s in read upload delete admin; do
	"$CAPVAULT" token add "t-$s" --store "$STORE" --scopes "$s" > "$T/tok-$s" 2>/dev/null
	"$CAPVAULT" token add "cs-$s" --store "$STORE" --scopes "$s" --cloudshark > "$T/cs-$s" 2>/dev/null
done
start_daemon

export U T MKCAP
export API_C="$(dirname "$0")/../../api/api.c"
rc=0
python3 - <<'PY' || rc=$?
import json, os, re, subprocess, sys, urllib.request

U, T, MKCAP = os.environ["U"], os.environ["T"], os.environ["MKCAP"]
tok = {s: open(f"{T}/tok-{s}").read().strip() for s in ("read", "upload", "delete", "admin")}
cstok = {s: open(f"{T}/cs-{s}").read().strip() for s in ("read", "upload", "delete", "admin")}
SCOPES = ("read", "upload", "delete", "admin")
failures = 0

def fail(msg):
    global failures
    failures += 1
    print("FAIL:", msg, file=sys.stderr)

# The routes as the router has them.
src = open(os.environ["API_C"]).read()
table = src[src.index("static const struct route routes[]"):]
table = table[:table.index("};")]
routes = re.findall(r'\{\s*"([A-Z]+)",\s*"([^"]+)",\s*(0|TOKEN_SCOPE_[A-Z]+),', table)
if len(routes) < 20:
    fail(f"could not read the route table of api/api.c ({len(routes)} routes)")

# The matrix: the scope each route needs. A new route needs a line here.
matrix = {
    "GET /v1/health": None,
    "GET /v1/captures": "read",
    "POST /v1/captures": "upload",
    "GET /v1/captures/*": "read",
    "DELETE /v1/captures/*": "delete",
    "PATCH /v1/captures/*": "upload",
    "GET /v1/captures/*/file": "read",
    "GET /v1/packets": "read",
    "GET /v1/stats": "read",
    "GET /v1/status": "read",
    "GET /v1/imports": "read",
    "GET /metrics": "read",
    "POST /v1/prune": "delete",
    "GET /v1/retention": "read",
    "POST /v1/tier": "delete",
    "GET /v1/tokens": "admin",
    "POST /v1/tokens": "admin",
    "DELETE /v1/tokens/*": "admin",
    "POST /v1/backup": "admin",
    "POST /api/v1/*/upload": "upload",
    "PUT /api/v1/*/upload": "upload",
    "GET /api/v1/*/info/*": "read",
    "GET /api/v1/*/search": "read",
    "GET /api/v1/*/download/*": "read",
    "POST /api/v1/*/delete/*": "delete",
    "POST /api/v1/*/delete": "delete",
}
for method, pattern, scope in routes:
    key = f"{method} {pattern}"
    want = None if scope == "0" else scope[len("TOKEN_SCOPE_"):].lower()
    if key not in matrix:
        fail(f"route {key} has no entry in the auth matrix")
    elif matrix[key] != want:
        fail(f"route {key} needs scope {want}, the matrix says {matrix[key]}")
for key in matrix:
    if key not in [f"{m} {p}" for m, p, _ in routes]:
        fail(f"the matrix has {key}, the router does not")

def http(method, path, token=None, body=None, headers=None):
    req = urllib.request.Request(U + path, data=body, method=method, headers=headers or {})
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()

seed = [1]
def pcap():
    seed[0] += 1
    p = f"{T}/c.pcap"
    subprocess.run([MKCAP, "--packets", "10", "--seed", str(seed[0]), "-o", p], check=True)
    return open(p, "rb").read()

def new_capture():
    st, body = http("POST", "/v1/captures?name=m.pcap", tok["admin"], pcap())
    assert st == 201, (st, body)
    return json.loads(body)["id"]

tokens_made = [0]
def new_token():
    tokens_made[0] += 1
    name = f"victim{tokens_made[0]}"
    st, body = http("POST", "/v1/tokens", tok["admin"], json.dumps({"name": name, "scopes": ["read"]}).encode())
    assert st == 201, (st, body)
    return name

# A request for each route: (path with the CloudShark token as {cs}, body).
def request(key, cs):
    method, pattern = key.split(" ", 1)
    cid = new_capture()
    p = pattern.replace("/api/v1/*/", f"/api/v1/{cs}/")
    body = None
    if key == "DELETE /v1/tokens/*":
        p = p.replace("*", new_token())
    p = p.replace("*", str(cid))
    headers = {}
    if key == "POST /api/v1/*/upload":
        body = (b"--BOUNDARY\r\nContent-Disposition: form-data; name=\"file\"; filename=\"m.pcap\"\r\n\r\n"
                + pcap() + b"\r\n--BOUNDARY--\r\n")
        headers = {"Content-Type": "multipart/form-data; boundary=BOUNDARY"}
    elif method == "PUT" or key == "POST /v1/captures":
        body = pcap()
    elif key == "PATCH /v1/captures/*":
        body = b'{"comment": "checked"}'
    elif key == "POST /v1/prune":
        body = b'{"dry_run": true}'
    elif key == "POST /v1/tier":
        body = json.dumps({"captures": [str(cid)], "dry_run": True}).encode()
    elif key == "POST /v1/tokens":
        tokens_made[0] += 1
        body = json.dumps({"name": f"new{tokens_made[0]}", "scopes": ["read"]}).encode()
    elif key == "POST /v1/backup":
        body = json.dumps({"dir": f"{T}/backup"}).encode()
    elif key == "POST /api/v1/*/delete":
        body = json.dumps({"id": cid}).encode()
    elif method in ("POST", "PUT", "PATCH"):
        body = b"{}"
    return method, p, body, headers

for key, need in matrix.items():
    cloudshark = key.split(" ", 1)[1].startswith("/api/")
    cases = [("none", None)] if not cloudshark else []
    cases += [("bad", "bad"), *[(s, s) for s in SCOPES]]
    for label, who in cases:
        if cloudshark:
            secret = "0" * 32 if who == "bad" else cstok[who]
            method, path, body, headers = request(key, secret)
            st, reply = http(method, path, None, body, headers)
        else:
            method, path, body, headers = request(key, "")
            secret = {"bad": "not-a-token", None: None}.get(who, tok.get(who))
            st, reply = http(method, path, secret, body, headers)
        if need is None:
            want = "2xx"
        elif who in (None, "bad"):
            want = 401
        elif who == "admin" or who == need:
            want = "2xx"
        else:
            want = 403
        if key == "POST /v1/backup" and want == "2xx":
            want = 403  # only on the unix socket, whatever the token
        ok = (200 <= st < 300) if want == "2xx" else st == want
        if not ok:
            fail(f"{key} as {label}: expected {want}, got {st} {reply[:200]!r}")
        if cloudshark and secret.encode() in reply:
            fail(f"{key} as {label}: the reply echoes the token")

# 15.15: a CloudShark 404 does not echo the token in the path.
for path in (f"/api/v1/{cstok['read']}/nothing", f"/api/v1/{cstok['read']}/info/1/x",
             f"/api/{cstok['read']}/v1"):
    st, reply = http("GET", path)
    if st != 404 or cstok["read"].encode() in reply:
        fail(f"GET {path[:20]}...: {st}, echoes the token: {cstok['read'].encode() in reply}")

# 15.13: tags that retention rules name need the delete scope.
def patch_tags(who, cid, tags):
    return http("PATCH", f"/v1/captures/{cid}", tok[who], json.dumps({"tags": tags}).encode())[0]
cid = new_capture()
checks = [
    ("upload adds a harmless tag", "upload", ["note"], 200),
    ("upload adds the scratch policy's tag", "upload", ["note", "scratch"], 403),
    ("delete adds the scratch policy's tag", "delete", ["note", "scratch"], 403),  # no upload scope
    ("admin adds the scratch policy's tag", "admin", ["note", "scratch"], 200),
    ("upload removes the scratch policy's tag", "upload", ["note"], 403),
    ("admin sets the protect tag", "admin", ["note", "keep"], 200),
    ("upload removes the protect tag", "upload", ["note"], 403),
    ("upload adds another harmless tag", "upload", ["note", "keep", "other"], 200),
]
for what, who, tags, want in checks:
    st = patch_tags(who, cid, tags)
    if st != want:
        fail(f"{what}: expected {want}, got {st}")
st, body = http("GET", f"/v1/captures/{cid}", tok["read"])
if sorted(json.loads(body)["tags"]) != ["keep", "note", "other"]:
    fail(f"tags after the PATCHes: {json.loads(body)['tags']}")
# The same rule when an upload turns out to duplicate a stored capture: its
# tags land on that capture, someone else's, so without the delete scope a
# policy's tag is not added (the protect tag and harmless ones are).
seed[0] += 1
body = pcap()
st, reply = http("POST", "/v1/captures?name=orig.pcap", tok["admin"], body)
assert st == 201, (st, reply)
orig = json.loads(reply)["id"]
st, reply = http("POST", "/v1/captures?name=again.pcap&tags=scratch,keep,dupnote", tok["upload"], body)
if st != 200 or json.loads(reply).get("id") != orig:
    fail(f"duplicate upload: {st} {reply[:200]}")
st, reply = http("GET", f"/v1/captures/{orig}", tok["read"])
if sorted(json.loads(reply)["tags"]) != ["dupnote", "keep"]:
    fail(f"an upload-only duplicate added {json.loads(reply)['tags']}, want dupnote and keep only")
st, reply = http("POST", "/v1/captures?name=again2.pcap&tags=scratch", tok["admin"], body)
st, reply = http("GET", f"/v1/captures/{orig}", tok["read"])
if "scratch" not in json.loads(reply)["tags"]:
    fail(f"an admin's duplicate did not add scratch: {json.loads(reply)['tags']}")
st, body = http("GET", "/v1/health")
if st != 200:
    fail(f"health: {st}")
sys.exit(1 if failures else 0)
PY
check "auth matrix" 0 "$rc"
# 15.17: every change is one audit line naming the token, the client and
# the capture (id and sha256).
curl -s -o "$T/backup.json" --unix-socket "$STORE/capvault.sock" -X POST \
	-d "{\"dir\": \"$T/bk2\"}" http://capvault/v1/backup
check "backup on the unix socket" "$T/bk2" "$(jq -r .dir "$T/backup.json")"
audited() {
	local n
	# A refusal is logged just after its reply is queued: give a slow
	# (sanitizer) build a moment before looking.
	for _ in $(seq 50); do
		grep -E "^<6>capvaultd: audit: $1 " "$T/d.log" | grep -qE -- "$2" && break
		sleep 0.1
	done
	n=$(grep -cE "^<6>capvaultd: audit: $1 " "$T/d.log" || true)
	[ "$n" -gt 0 ] || fail "no audit line: $1 (pattern: $2)"
	grep -E "^<6>capvaultd: audit: $1 " "$T/d.log" | grep -qE -- "$2" ||
		fail "audit line $1 lacks $2: $(grep -E "audit: $1 " "$T/d.log" | head -1)"
}
CAP='capture_id="[0-9]+" sha256="[0-9a-f]{64}" name="m.pcap"'
audited upload "^.* token=\"t-admin\" client=\"127\.0\.0\.1:[0-9]+\" $CAP duplicate=\"no\""
audited delete "token=\"(t-delete|t-admin)\" client=\"127\.0\.0\.1:[0-9]+\" $CAP freed_bytes="
audited delete "token=\"cs-delete\" client=\"127\.0\.0\.1:[0-9]+\" $CAP"
audited update "token=\"t-upload\" client=\"127\.0\.0\.1:[0-9]+\" $CAP old_tags=\"\" tags=\"note\""
audited update "comment=\"checked\""
audited prune "token=\"t-(delete|admin)\" .* dry_run=\"yes\""
audited token-add "token=\"t-admin\" .* target_token=\"victim[0-9]+\" scopes=\"read\""
audited token-revoke "token=\"t-admin\" .* target_token=\"victim[0-9]+\""
audited backup "token=\"unix-socket\" client=\"unix:uid=[0-9]+,pid=[0-9]+\" dir=\"$T/bk2\""
audited denied "token=\"t-read\" client=\"127\.0\.0\.1:[0-9]+\" route=\"POST /v1/captures\" reason=\"missing scope\""
# Tokens are named in the log, never by their secret.
for s in read upload delete admin; do
	if grep -qF "$(cat "$T/cs-$s")" "$T/d.log"; then fail "the log holds the secret of cs-$s"; fi
	if grep -qF "$(cat "$T/tok-$s")" "$T/d.log"; then fail "the log holds the secret of t-$s"; fi
done
stop_daemon

# Offline changes (no daemon) are audited too: to the journal's native
# socket, never on stderr. A private mount namespace gives this test its
# own /run/systemd/journal/socket (SKIP of this part where that is refused).
cat > "$T/journal.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
open(sys.argv[2] + ".ready", "w").close()
s.settimeout(20)
with open(sys.argv[2], "ab") as out:
    try:
        while True:
            out.write(s.recv(65536) + b"\n--\n")
            out.flush()
    except socket.timeout:
        pass
PY
ID=$("$CAPVAULT" ls --json | jq '.[0].id')
export ID T CAPVAULT
rc=0
unshare -m bash -c '
	mount -t tmpfs tmpfs /run 2>/dev/null && mkdir -p /run/systemd/journal || exit 77
	python3 "$T/journal.py" /run/systemd/journal/socket "$T/journal.out" & pid=$!
	for _ in $(seq 100); do [ -e "$T/journal.out.ready" ] && break; sleep 0.05; done
	"$CAPVAULT" tag "$ID" +offline-tag > "$T/tag.out" 2> "$T/tag.err" &&
		"$CAPVAULT" rm "$ID" > "$T/rm.out" 2> "$T/rm.err"
	rc=$?
	sleep 0.3
	kill $pid
	exit $rc' || rc=$?
if [ "$rc" = 77 ]; then
	echo "SKIP: offline audit (no private mount namespace here)"
else
	check "offline tag and rm" 0 "$rc"
	check "offline rm prints no audit line" "" "$(cat "$T/rm.err")"
	grep -qa "CAPVAULT_ACTION=update" "$T/journal.out" || fail "no journal entry for the offline tag"
	grep -qa "CAPVAULT_ACTION=delete" "$T/journal.out" || fail "no journal entry for the offline rm"
	grep -qa "CAPVAULT_CAPTURE_ID=$ID" "$T/journal.out" || fail "the offline entries lack the capture id"
	grep -qa "^MESSAGE=capvault: audit: delete .*token=\"offline\" client=\"offline:uid=" "$T/journal.out" ||
		fail "offline delete entry: $(head -c 600 "$T/journal.out")"
fi
finish
