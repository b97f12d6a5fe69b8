#!/bin/bash
# Hostile names (issue 15.1): capture names of any bytes (not UTF-8,
# newlines, quotes, backslashes, '%', control characters, NAME_MAX long)
# come in every way (upload ?name=, multipart filename, a file dropped in
# an import folder, a tar member, `capvault import` of a file) and go out
# every way (/v1 JSON, Content-Disposition, CloudShark info, search and
# download, capvault ls/info as text and --json, with the daemon and
# offline, DELETE's reply, the log). Each shown name must read back to the
# exact bytes by the escaped form of common/textesc.h, nothing may crash
# (the daemon still answers /v1/health), and no name may forge a log line.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"

command -v python3 >/dev/null || { echo "python3 missing"; exit 77; }

STORE="$T/store"
mkdir -p "$T/in"
write_config() {
	cat > "$T/d.yaml" <<YAML
store: $STORE
jobs: 1
log_level: debug
import:
  - path: $T/in
api:
  listen: ["127.0.0.1:$1"]
  timeout: 10s
YAML
}

ADMIN=$("$CAPVAULT" token add admin --store "$STORE" --scopes admin 2>/dev/null)
CS=$("$CAPVAULT" token add cs --store "$STORE" --scopes read,upload,delete --cloudshark 2>/dev/null)
start_daemon

export U ADMIN CS T STORE CAPVAULT MKCAP
export CAPVAULT_SOCKET="$STORE/capvault.sock"
rc=0
python3 - <<'PY' || rc=$?
import json, os, re, subprocess, sys, tarfile, time, urllib.parse, urllib.request

U, T, CAPVAULT, MKCAP = (os.environ[k] for k in ("U", "T", "CAPVAULT", "MKCAP"))
ADMIN, CS = os.environ["ADMIN"], os.environ["CS"]
failures = 0

def fail(msg):
    global failures
    failures += 1
    print("FAIL:", msg, file=sys.stderr)

def check(what, want, got):
    if want != got:
        fail(f"{what}: expected {want!r}, got {got!r}")

# The escaped form (textesc.h): UTF-8 kept, '\' doubled, other bytes \xHH;
# controls: also C0, DEL, C1, bidi marks, embeddings, overrides and
# isolates, line and paragraph separators; quote: also '"'.
BIDI = {0x061C, 0x200E, 0x200F} | set(range(0x2028, 0x202F)) | set(range(0x2066, 0x206A))
def esc(raw, controls=False, quote=False):
    out = []
    for ch in raw.decode("utf-8", "surrogateescape"):
        c = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif 0xDC80 <= c <= 0xDCFF:
            out.append("\\x%02x" % (c - 0xDC00))
        elif (controls and (c < 0x20 or c == 0x7F or 0x80 <= c <= 0x9F or c in BIDI)) or (quote and ch == '"'):
            out.extend("\\x%02x" % b for b in ch.encode())
        else:
            out.append(ch)
    return "".join(out)

def unesc(shown):
    out, i, s = bytearray(), 0, shown.encode("utf-8", "surrogateescape")
    while i < len(s):
        if s[i:i + 2] == b"\\\\":
            out += b"\\"; i += 2
        elif s[i:i + 2] == b"\\x":
            out.append(int(s[i + 2:i + 4], 16)); i += 4
        else:
            out.append(s[i]); i += 1
    return bytes(out)

def http(method, path, token=None, body=None, headers=None):
    req = urllib.request.Request(U + path, data=body, method=method, headers=headers or {})
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()

seed = [100]
def capture(path):
    seed[0] += 1
    subprocess.run([MKCAP, "--packets", "20", "--seed", str(seed[0]), "-o", path], check=True)
    with open(path, "rb") as f:
        return f.read()

every = bytes(b for b in range(1, 256) if b != ord("/"))  # 254 bytes: near NAME_MAX
names = [
    b"bad\xff\xfe.pcap",
    b"nl\n<3>capvaultd: forged line.pcap",
    b'q"uo\\te %41 %zz \\x41 \\\\.pcap',
    b"ctl\x01\x1b[31m\x7f\xc2\x9b\xe2\x80\xae.pcap",
    b"caf\xc3\xa9 \xed\xa0\x80 \xc0\xaf.pcap",
    every,
    b"L" * 240 + b"\xff\xfe.pcap",
]
expected = {}  # raw name -> how it came in

# 1. Upload with ?name= (percent-encoded bytes).
for i, n in enumerate(names):
    st, h, body = http("POST", "/v1/captures?name=" + urllib.parse.quote_from_bytes(n, safe=""),
                       ADMIN, capture(f"{T}/up{i}.pcap"))
    check(f"upload ?name= {n!r}: status", 201, st)
    if st == 201:
        check(f"upload ?name= {n!r}: reply name", n, unesc(json.loads(body)["name"]))
        expected[n] = "query"

# 2. Multipart upload with the name as the part's file name (no '"', CR, LF:
# the form's own quoting).
for i, n in enumerate(x for x in names if not re.search(rb'["\r\n]', x)):
    mp = b"name-" + n
    data = capture(f"{T}/mp{i}.pcap")
    body = (b"--BOUNDARY\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + mp +
            b"\"\r\nContent-Type: application/octet-stream\r\n\r\n" + data + b"\r\n--BOUNDARY--\r\n")
    st, h, reply = http("POST", "/v1/captures", ADMIN, body,
                        {"Content-Type": "multipart/form-data; boundary=BOUNDARY"})
    check(f"multipart {mp!r}: status", 201, st)
    if st == 201:
        check(f"multipart {mp!r}: reply name", mp, unesc(json.loads(reply)["name"]))
        expected[mp] = "multipart"

# 3. Files dropped into the import folder.
drop = [b"drop-" + n for n in names if len(n) < 240] + [b"drop-" + every[5:]]
for i, n in enumerate(drop):
    capture(f"{T}/drop.tmp")
    os.rename(f"{T}/drop.tmp".encode(), os.fsencode(T) + b"/in/" + n)
    expected[n] = "drop"

# 4. Tar members, and 5. `capvault import` of files, through the daemon.
tarpath = f"{T}/names.tar"
with tarfile.open(tarpath, "w", format=tarfile.GNU_FORMAT, encoding="utf-8",
                  errors="surrogateescape") as tf:
    for i, n in enumerate(names[:5]):
        member = b"tar-" + n
        p = f"{T}/tar{i}.pcap"
        capture(p)
        tf.add(p, arcname=member.decode("utf-8", "surrogateescape"))
        expected[member] = "tar"
r = subprocess.run([CAPVAULT, "import", "--quiet", "--tar", tarpath], capture_output=True)
check("capvault import --tar: exit code", 0, r.returncode)
files = []
for i, n in enumerate(names[:5]):
    p = os.fsencode(T) + b"/cli-" + n
    capture(f"{T}/cli.tmp")
    os.rename(f"{T}/cli.tmp".encode(), p)
    files.append(p)
    expected[b"cli-" + n] = "cli"
r = subprocess.run([CAPVAULT, "import", "--quiet"] + files, capture_output=True)
check("capvault import FILES: exit code " + r.stderr.decode(errors="replace"), 0, r.returncode)

def listing():
    st, h, body = http("GET", "/v1/captures?limit=1000", ADMIN)
    check("list status", 200, st)
    return json.loads(body)["captures"] if st == 200 else []

deadline = time.time() + 30
while time.time() < deadline and len(listing()) < len(expected):
    time.sleep(0.2)
caps = listing()
by_name = {unesc(c["name"]): c for c in caps}
for n, how in expected.items():
    if n not in by_name:
        fail(f"{how} name {n!r} not listed as itself; names: {sorted(by_name)!r}")
check("captures listed", len(expected), len(caps))

def disposition_name(h):
    cd = h.get("Content-Disposition", "")
    m = re.search(r"filename\*=UTF-8''([^;\s]*)", cd)
    if not m:
        fail(f"no filename* in {cd!r}")
        return None
    return unesc(urllib.parse.unquote(m.group(1), errors="strict"))

# Out: /v1 JSON, the sorted listing, Content-Disposition, CloudShark.
for n, c in by_name.items():
    cid = c["id"]
    st, h, body = http("GET", f"/v1/captures/{cid}", ADMIN)
    check(f"GET {cid}", (200, n), (st, unesc(json.loads(body)["name"])))
    st, h, body = http("GET", f"/v1/captures/{cid}/file", ADMIN)
    check(f"download {cid} status", 200, st)
    check(f"download {cid} Content-Disposition", n, disposition_name(h))
    st, h, body = http("GET", f"/api/v1/{CS}/info/{cid}")
    check(f"cloudshark info {cid}", (200, n), (st, unesc(json.loads(body)["filename"])))
    st, h, body = http("GET", f"/api/v1/{CS}/download/{cid}")
    check(f"cloudshark download {cid}", (200, n), (st, disposition_name(h)))
    word = n[3:12]
    st, h, body = http("GET", f"/api/v1/{CS}/search?limit=1000&search[filename]=" +
                       urllib.parse.quote_from_bytes(word, safe=""))
    hits = [unesc(x["filename"]) for x in json.loads(body)["captures"]] if st == 200 else []
    check(f"cloudshark search {word!r} status", 200, st)
    if n not in hits:
        fail(f"cloudshark search {word!r} misses {n!r}")
st, h, body = http("GET", "/v1/captures?limit=1000&sort=name", ADMIN)
check("sorted by name", sorted(by_name), sorted(unesc(c["name"]) for c in json.loads(body)["captures"]))

# Out: the CLI, through the daemon, as text (one line each) and --json.
def cli_names(offline):
    env = dict(os.environ)
    if offline:
        env.pop("CAPVAULT_SOCKET", None)
    where = "offline" if offline else "daemon"
    r = subprocess.run([CAPVAULT, "ls"], capture_output=True, env=env)
    check(f"ls ({where}) exit", 0, r.returncode)
    lines = r.stdout.decode("utf-8").splitlines()
    check(f"ls ({where}): one line per capture", len(by_name) + 1, len(lines))
    for n, c in by_name.items():
        shown = esc(n, controls=True)
        if not any(shown in l for l in lines):
            fail(f"ls ({where}) does not show {shown!r}")
    r = subprocess.run([CAPVAULT, "ls", "--json"], capture_output=True, env=env)
    check(f"ls --json ({where})", sorted(by_name), sorted(unesc(c["name"]) for c in json.loads(r.stdout)))
    for n, c in list(by_name.items())[:6]:
        r = subprocess.run([CAPVAULT, "info", str(c["id"])], capture_output=True, env=env)
        line = [l for l in r.stdout.decode("utf-8").splitlines() if l.startswith("name ")]
        check(f"info {c['id']} ({where})", [esc(n, controls=True)], [l.split(None, 1)[1] for l in line])
        r = subprocess.run([CAPVAULT, "info", "--json", str(c["id"])], capture_output=True, env=env)
        check(f"info --json {c['id']} ({where})", n, unesc(json.loads(r.stdout)["name"]))
cli_names(False)

# PATCH takes the escaped form: GET's name PATCHed back is the same bytes.
victim = by_name[names[0]]
st, h, body = http("PATCH", f"/v1/captures/{victim['id']}", ADMIN,
                   json.dumps({"name": esc(b"re\xffnamed\\.pcap")}).encode())
check("PATCH escaped name", (200, b"re\xffnamed\\.pcap"), (st, unesc(json.loads(body)["name"]) if st == 200 else None))
st, h, body = http("PATCH", f"/v1/captures/{victim['id']}", ADMIN, json.dumps({"name": "C:\\temp"}).encode())
check("PATCH name not in the escaped form", 422, st)
st, h, body = http("PATCH", f"/v1/captures/{victim['id']}", ADMIN, json.dumps({"name": esc(names[0])}).encode())
check("PATCH name back", 200, st)

# DELETE answers the name it deleted (it answered 500 for a non-UTF-8 one).
for n in (names[0], b"drop-" + names[1]):
    c = by_name.pop(n)
    st, h, body = http("DELETE", f"/v1/captures/{c['id']}", ADMIN)
    check(f"DELETE {n!r}", (200, n), (st, unesc(json.loads(body)["name"]) if st == 200 else body))
n = names[3]
c = by_name.pop(n)
st, h, body = http("POST", f"/api/v1/{CS}/delete/{c['id']}")
check(f"cloudshark delete {n!r}", (200, n), (st, unesc(json.loads(body)["filename"]) if st == 200 else body))

# capvault rm through the daemon prints the name as ls does.
n = b"cli-" + names[1]
c = by_name.pop(n)
r = subprocess.run([CAPVAULT, "rm", str(c["id"])], capture_output=True)
check("capvault rm: one line with the shown name", [f"removed {c['id']} {esc(n, controls=True)} "],
      [l[:l.rindex("(")] for l in r.stdout.decode().splitlines()])

st, h, body = http("GET", "/v1/health")
check("health after all", 200, st)
with open(f"{T}/expected.json", "w") as f:
    json.dump({str(c["id"]): esc(n, controls=True, quote=True) for n, c in by_name.items()}, f)
with open(f"{T}/remaining.json", "w") as f:
    json.dump([n.decode("latin-1") for n in by_name], f)
sys.exit(1 if failures else 0)
PY
check "hostile names through the daemon" 0 "$rc"
stop_daemon

# No name forged a log line: every line is one of the daemon's own.
bad=$(grep -cvE '^(<[0-7]>)?capvaultd: ' "$T/d.log" || true)
check "log lines the daemon did not write" 0 "$bad"
grep -vE '^(<[0-7]>)?capvaultd: ' "$T/d.log" | head -5 >&2 || true
check "a forged line starts no log line" 0 "$(grep -c '^<3>capvaultd: forged' "$T/d.log" || true)"
# Uploads are audited with the exact name, escaped (common/textesc.h).
check "upload audit line names a non-UTF-8 name" 1 \
	"$(grep -c 'audit: upload .*name="tar-bad\\xff\\xfe.pcap"' "$T/d.log" || true)"

# Reads are logged at debug level; a CloudShark call by its route, as its
# path holds the token.
check "debug line for a read" yes "$(grep -qE '^<7>capvaultd: request: GET /v1/captures/[0-9]+/file token="admin" client="127' "$T/d.log" && echo yes || echo no)"
check "debug line for a CloudShark read" yes "$(grep -qF 'request: GET /api/v1/*/info/* ' "$T/d.log" && echo yes || echo no)"
check "no secret in the log" 0 "$(grep -cF -e "$CS" -e "$ADMIN" "$T/d.log" || true)"

# The same names offline.
rc=0
CAPVAULT_SOCKET= python3 - <<'PY' || rc=$?
import json, os, subprocess, sys
T, CAPVAULT = os.environ["T"], os.environ["CAPVAULT"]
names = [n.encode("latin-1") for n in json.load(open(f"{T}/remaining.json"))]
BIDI = {0x061C, 0x200E, 0x200F} | set(range(0x2028, 0x202F)) | set(range(0x2066, 0x206A))
def esc(raw):
    out = []
    for ch in raw.decode("utf-8", "surrogateescape"):
        c = ord(ch)
        if ch == "\\": out.append("\\\\")
        elif 0xDC80 <= c <= 0xDCFF: out.append("\\x%02x" % (c - 0xDC00))
        elif c < 0x20 or c == 0x7F or 0x80 <= c <= 0x9F or c in BIDI: out.extend("\\x%02x" % b for b in ch.encode())
        else: out.append(ch)
    return "".join(out)
r = subprocess.run([CAPVAULT, "ls"], capture_output=True)
lines = r.stdout.decode("utf-8").splitlines()
bad = 0
if r.returncode != 0 or len(lines) != len(names) + 1:
    print(f"FAIL: offline ls: rc {r.returncode}, {len(lines)} lines for {len(names)}", file=sys.stderr)
    bad = 1
for n in names:
    if not any(esc(n) in l for l in lines):
        print(f"FAIL: offline ls does not show {esc(n)!r}", file=sys.stderr)
        bad = 1
sys.exit(bad)
PY
check "hostile names offline" 0 "$rc"

# The per-source lines of capvault import show each name escaped, as ls
# does: one line per source, no control character (raw member and file
# names split lines and sent escape sequences to the terminal). Into a
# store of their own, offline.
rc=0
CAPVAULT_SOCKET= CAPVAULT_STORE=$T/store-lines python3 - <<'PY' || rc=$?
import os, re, subprocess, sys
T, CAPVAULT = os.environ["T"], os.environ["CAPVAULT"]
subprocess.run([CAPVAULT, "init"], check=True, capture_output=True)
def unesc(shown):
    out, i, s = bytearray(), 0, shown.encode("utf-8", "surrogateescape")
    while i < len(s):
        if s[i:i + 2] == b"\\\\":
            out += b"\\"; i += 2
        elif s[i:i + 2] == b"\\x":
            out.append(int(s[i + 2:i + 4], 16)); i += 4
        else:
            out.append(s[i]); i += 1
    return bytes(out)
tar = os.fsencode(T) + b"/names.tar"
files = sorted(os.fsencode(T) + b"/" + n for n in os.listdir(os.fsencode(T)) if n.startswith(b"cli-"))
bad = 0
for args, want in (([b"--tar", tar], None), (files, files)):
    r = subprocess.run([CAPVAULT, "import"] + args, capture_output=True)
    out = r.stdout.decode("utf-8", "surrogateescape")
    lines = out.split("\n")[:-1]
    if r.returncode != 0 or len(lines) != 6:
        print(f"FAIL: capvault import {args[0]!r}: rc {r.returncode}, {len(lines)} lines, not 6: {out!r}",
              file=sys.stderr)
        bad = 1
    for line in lines:
        if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or 0xDC80 <= ord(c) <= 0xDCFF for c in line):
            print(f"FAIL: capvault import printed a control or invalid byte: {line!r}", file=sys.stderr)
            bad = 1
    shown = [unesc(m.group(1)) for m in
             (re.match(r"imported   \S+\s+[0-9a-f]{12}  \d+ packets  (.*)$", l) for l in lines) if m]
    if want is None:
        want = [n for n in shown if n.startswith(tar + b"!tar-")]
    if len(shown) != 5 or sorted(shown) != sorted(want):
        print(f"FAIL: capvault import shows {shown!r}, not {want!r}", file=sys.stderr)
        bad = 1
sys.exit(bad)
PY
check "capvault import lines of hostile names" 0 "$rc"
finish
