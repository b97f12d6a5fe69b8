#!/bin/bash
# The web viewer's login and headers over plain HTTP (#19), with curl:
# nothing about a capture without a login (pages redirect to /login, the
# API answers 401); login by link and by form sets an HttpOnly,
# SameSite=Strict session cookie with an expiry and sends the browser on
# without the token; the /v1 API takes the cookie, and every change made
# with it needs the session's CSRF token; logout and revoking the token
# end the session; every viewer reply has the CSP, nosniff and
# no-referrer headers, and no page has an inline script or style; a token
# never reaches the log, even at debug level.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"

command -v curl >/dev/null || { echo "curl missing"; exit 77; }
command -v jq >/dev/null || { echo "jq missing"; exit 77; }

STORE="$T/store"
write_config() {
	cat > "$T/d.yaml" <<YAML
store: $STORE
jobs: 1
log_level: debug
api:
  listen: ["127.0.0.1:$1"]
YAML
}
ADM=$("$CAPVAULT" token add adm --store "$STORE" --scopes admin 2>/dev/null)
RD=$("$CAPVAULT" token add rd --store "$STORE" --scopes read 2>/dev/null)
GONE=$("$CAPVAULT" token add gone --store "$STORE" --scopes read 2>/dev/null)
"$MKCAP" --packets 20 --hosts 2 --seed 1 -o "$T/secret-name.pcap"
"$CAPVAULT" import --store "$STORE" "$T/secret-name.pcap" >/dev/null
start_daemon

# get URL [curl args...]: headers in $T/h, body in $T/b; prints the status.
get() {
	local url=$1
	shift
	curl -s -o "$T/b" -D "$T/h" -w '%{http_code}' "$@" "$U$url"
}
header() { grep -i "^$1:" "$T/h" | head -1 | cut -d' ' -f2- | tr -d '\r'; }
cookie_of() { header Set-Cookie | sed -n 's/^capvault_session=\([0-9a-f]*\);.*/\1/p'; }

# --- nothing without a login
for p in / /captures /captures/1 /packets /upload /imports /retention /tokens; do
	check "GET $p logged out" "303" "$(get "$p")"
	check "GET $p logged out: to /login" "/login?next=$p" "$(header Location)"
	check "GET $p logged out: no capture name" "0" "$(grep -c secret-name "$T/b" || true)"
done
check "API without a login" "401" "$(get /v1/captures)"
check "session without a login" "401" "$(get /v1/session)"
check "a bogus cookie" "401" "$(get /v1/captures -H "Cookie: capvault_session=$(printf '%064d' 0)")"

# --- headers on every viewer reply
for p in /login / /assets/app.js /nope; do
	get "$p" >/dev/null
	check "CSP on $p" "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'" \
		"$(header Content-Security-Policy)"
	check "nosniff on $p" "nosniff" "$(header X-Content-Type-Options)"
	check "no-referrer on $p" "no-referrer" "$(header Referrer-Policy)"
done
check "login page" "200" "$(get /login)"
check "login page has a form" "1" "$(grep -c 'action="/login"' "$T/b")"
check "next in the form, escaped" "1" \
	"$(get '/login?next=/packets%3Fa%3D1%26lt%3D2' >/dev/null; grep -c 'value="/packets?a=1&amp;lt=2"' "$T/b")"

# --- login by link: cookie, redirect without the token
check "login link" "303" "$(get "/packets?token=$ADM&filter=tcp%20port%2080")"
check "login link: token dropped" "/packets?filter=tcp%20port%2080" "$(header Location)"
sc=$(header Set-Cookie)
for attr in HttpOnly SameSite=Strict Path=/ Max-Age=43200; do
	check "cookie has $attr" "1" "$(tr ';' '\n' <<<"$sc" | tr -d ' ' | grep -cx "$attr")"
done
check "no Secure cookie over plain HTTP" "0" "$(grep -c Secure <<<"$sc" || true)"
SID=$(cookie_of)
check "session id is 64 hex digits" "64" "${#SID}"
CK=(-H "Cookie: capvault_session=$SID")
check "bad login link" "401" "$(get "/?token=$(printf '%064d' 1)")"
check "bad login link: no cookie" "" "$(header Set-Cookie)"

# --- logged in: pages, the API by cookie, CSRF
check "list page" "200" "$(get / "${CK[@]}")"
check "list page not cached" "no-store" "$(header Cache-Control)"
CSRF=$(sed -n 's/.*<meta name="csrf-token" content="\([0-9a-f]*\)">.*/\1/p' "$T/b")
# The same token with its last digit changed.
WRONG=${CSRF%?}$([ "${CSRF: -1}" = 0 ] && echo 1 || echo 0)
check "csrf token in the page" "64" "${#CSRF}"
check "session" "200" "$(get /v1/session "${CK[@]}")"
check "session: token and csrf" "adm $CSRF" "$(jq -r '"\(.token) \(.csrf)"' "$T/b")"
check "API by cookie" "200" "$(get /v1/captures "${CK[@]}")"
check "API by cookie lists the capture" "secret-name.pcap" "$(jq -r '.captures[0].name' "$T/b")"
for p in / /captures/1 /packets /upload /imports /retention /tokens; do
	check "GET $p" "200" "$(get "$p" "${CK[@]}")"
	check "$p: scripts only from files" "0" "$(grep -Eci '<script>|<script [^>]*>[^<]' "$T/b" || true)"
	check "$p: no inline style or handler" "0" "$(grep -Eci ' style=| on[a-z]+=|<style' "$T/b" || true)"
done
check "PATCH by cookie without CSRF" "403" \
	"$(get /v1/captures/1 "${CK[@]}" -X PATCH -H 'Content-Type: application/json' -d '{"tags":["x"]}')"
check "PATCH by cookie, wrong CSRF" "403" \
	"$(get /v1/captures/1 "${CK[@]}" -X PATCH -H "X-CSRF-Token: $WRONG" -d '{"tags":["x"]}')"
check "DELETE by cookie without CSRF" "403" "$(get /v1/captures/1 "${CK[@]}" -X DELETE)"
check "still there" "200" "$(get /v1/captures/1 "${CK[@]}")"
check "PATCH by cookie with CSRF" "200" \
	"$(get /v1/captures/1 "${CK[@]}" -X PATCH -H "X-CSRF-Token: $CSRF" -d '{"tags":["seen"]}')"
check "tag set" "seen" "$(jq -r '.tags[0]' "$T/b")"
check "bearer calls need no CSRF" "200" \
	"$(get /v1/captures/1 -X PATCH -H "Authorization: Bearer $ADM" -d '{"tags":["bearer"]}')"

# --- assets: ETag and 304; the templates are not assets
check "asset" "200" "$(get /assets/app.js)"
check "asset type" "text/javascript; charset=utf-8" "$(header Content-Type)"
etag=$(header ETag)
check "asset revalidates" "304" "$(get /assets/app.js -H "If-None-Match: $etag")"
check "shell is no asset" "404" "$(get /assets/shell.html)"

# --- scopes: a read token sees no upload or token page
check "read login" "303" "$(get "/?token=$RD")"
RCK=(-H "Cookie: capvault_session=$(cookie_of)")
check "read: list" "200" "$(get / "${RCK[@]}")"
check "read: no Tokens link" "0" "$(grep -c 'href="/tokens"' "$T/b" || true)"
check "read: /tokens" "403" "$(get /tokens "${RCK[@]}")"
check "read: /upload" "403" "$(get /upload "${RCK[@]}")"
check "read: no delete by cookie" "403" \
	"$(get /v1/captures/1 "${RCK[@]}" -X DELETE -H "X-CSRF-Token: $(jq -r .csrf <<<"$(curl -s "${RCK[@]}" "$U/v1/session")")")"

# --- login by form; a form from another site is refused
check "form login, bad token" "401" "$(get /login --data-urlencode "token=nope" --data-urlencode next=/imports)"
check "form login, bad token: no cookie" "" "$(header Set-Cookie)"
check "form login" "303" "$(get /login --data-urlencode "token=$GONE" --data-urlencode next=/imports)"
check "form login: on to next" "/imports" "$(header Location)"
GCK=(-H "Cookie: capvault_session=$(cookie_of)")
check "form login: session" "gone" "$(curl -s "${GCK[@]}" "$U/v1/session" | jq -r .token)"
check "form login from elsewhere" "403" \
	"$(get /login -H 'Origin: http://evil.example' --data-urlencode "token=$GONE")"
check "form login from elsewhere (Sec-Fetch-Site)" "403" \
	"$(get /login -H 'Sec-Fetch-Site: cross-site' --data-urlencode "token=$GONE")"
check "form login from this site (Sec-Fetch-Site)" "303" \
	"$(get /login -H 'Sec-Fetch-Site: same-origin' -H 'Origin: null' --data-urlencode "token=$GONE")"
check "next stays on this site" "/" \
	"$(get /login --data-urlencode "token=$GONE" --data-urlencode next=//evil.example/ >/dev/null; header Location)"

# --- revoking the token ends its sessions
check "revoke" "200" "$(get /v1/tokens/gone -X DELETE -H "Authorization: Bearer $ADM")"
check "revoked: page" "303" "$(get / "${GCK[@]}")"
check "revoked: API" "401" "$(get /v1/captures "${GCK[@]}")"

# --- logout needs the CSRF token, then the session is over
check "logout without CSRF" "403" "$(get /logout "${CK[@]}" -d csrf=0)"
check "still logged in" "200" "$(get /v1/session "${CK[@]}")"
check "logout" "303" "$(get /logout "${CK[@]}" --data-urlencode "csrf=$CSRF")"
check "logout clears the cookie" "1" "$(header Set-Cookie | grep -c 'capvault_session=;.*Max-Age=0')"
check "after logout: API" "401" "$(get /v1/captures "${CK[@]}")"
check "after logout: page" "303" "$(get / "${CK[@]}")"

# --- no token in the log, even at debug level
for t in "$ADM" "$RD" "$GONE" "$SID" "$CSRF"; do
	check "secret not logged" "0" "$(grep -c "$t" "$T/d.log" || true)"
done
check "logins audited" "1" "$(grep -c 'audit: login .*token="adm"' "$T/d.log")"
stop_daemon

# --- under TLS the cookie is Secure
mkdir -p "$T/cert"
"$CAPVAULT" cert selfsigned --out "$T/cert" --days 2 --cn viewer.test >/dev/null 2>&1
write_config() {
	cat > "$T/d.yaml" <<YAML
store: $STORE
jobs: 1
api:
  listen: ["127.0.0.1:$1"]
  tls: { cert: $T/cert/cert.pem, key: $T/cert/key.pem }
YAML
}
start_daemon
U=${U/http:/https:}
check "TLS login link" "303" "$(get "/?token=$ADM" -k)"
check "TLS cookie is Secure" "1" "$(header Set-Cookie | tr ';' '\n' | tr -d ' ' | grep -cx Secure)"
TCK=(-H "Cookie: capvault_session=$(cookie_of)")
tcsrf=$(curl -sk "${TCK[@]}" "$U/v1/session" | jq -r .csrf)
check "TLS logout" "303" "$(get /logout -k "${TCK[@]}" --data-urlencode "csrf=$tcsrf")"
check "TLS logout's cookie is Secure" "1" "$(header Set-Cookie | tr ';' '\n' | tr -d ' ' | grep -cx Secure)"
stop_daemon
finish
