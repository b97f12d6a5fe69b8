#!/bin/bash
# `meson install --destdir` into a temporary root: the programs, the unit,
# sysusers.d and tmpfiles.d entries, the configuration (kept when it is
# already there) and the man pages (when scdoc built them) land where the
# build's directories say. Then the installed unit is checked by
# systemd-analyze (verify clean, `security --offline=yes` rated 2.0 or
# lower), the sysusers and tmpfiles entries are applied to the temporary
# root, and the installed configuration passes --check-config with its
# paths moved under the temporary folder. The systemd checks are skipped
# (not failed) on a machine without systemd-analyze.
. "$(dirname "$0")/lib.sh"
: "${CAPVAULT_BUILD_ROOT:?the meson build folder}"
: "${CAPVAULT_BINDIR:?}" "${CAPVAULT_ENGINE:?}" "${CAPVAULT_SYSCONFDIR:?}" "${CAPVAULT_MANDIR:?}" "${CAPVAULT_DATADIR:?}"
: "${CAPVAULT_UNITDIR:?}" "${CAPVAULT_SYSUSERSDIR:?}" "${CAPVAULT_TMPFILESDIR:?}"
: "${CAPVAULT_VERSION:?}" "${CAPVAULT_SOURCE:?}"

R=$T/root
do_install() {
	expect_rc 0 meson install -C "$CAPVAULT_BUILD_ROOT" --destdir "$R" --no-rebuild
}
do_install

# The file list.
conf=$R$CAPVAULT_SYSCONFDIR/capvault/capvault.yaml
unit=$R$CAPVAULT_UNITDIR/capvault.service
for f in "$R$CAPVAULT_BINDIR/capvaultd" "$R$CAPVAULT_BINDIR/capvault" "$R$CAPVAULT_ENGINE" "$conf" "$unit" \
	"$R$CAPVAULT_SYSUSERSDIR/capvault.conf" "$R$CAPVAULT_TMPFILESDIR/capvault.conf" \
	"$R$CAPVAULT_DATADIR/doc/capvault/capvault.yaml.example" \
	"$R$CAPVAULT_DATADIR/zsh/vendor-completions/_capvault"; do
	checks=$((checks + 1))
	[ -f "$f" ] || fail "not installed: ${f#"$R"}"
done
# bash-completion loads a command's completion by its name.
for c in capvault capvaultd; do
	checks=$((checks + 1))
	[ -e "$R/usr/share/bash-completion/completions/$c" ] ||
		[ -e "$R$CAPVAULT_DATADIR/bash-completion/completions/$c" ] ||
		fail "bash completion for $c not installed"
done
for x in "$CAPVAULT_BINDIR/capvaultd" "$CAPVAULT_BINDIR/capvault" "$CAPVAULT_ENGINE"; do
	checks=$((checks + 1))
	[ -x "$R$x" ] || fail "$x is not executable"
done
# The engine is out of PATH; the thin front links no store library
# (libstdc++ is not checked: a sanitizer runtime brings it).
checks=$((checks + 1))
[ ! -e "$R$CAPVAULT_BINDIR/capvault-offline" ] || fail "capvault-offline installed in bindir"
checks=$((checks + 1))
if ldd "$R$CAPVAULT_BINDIR/capvault" | grep -E 'rocksdb|uring|pcap' > "$T/libs"; then
	fail "the installed capvault front loads $(tr -s ' \t\n' ' ' < "$T/libs")"
fi
if [ "${CAPVAULT_HAVE_SCDOC:-}" = 1 ]; then
	for m in man8/capvaultd.8 man1/capvault.1 man5/capvault.yaml.5; do
		checks=$((checks + 1))
		[ -s "$R$CAPVAULT_MANDIR/$m" ] || fail "man page not installed: $m"
		grep -q '^\.TH' "$R$CAPVAULT_MANDIR/$m" || fail "$m is not roff"
	done
else
	echo "scdoc not found: man pages not built, not checked"
fi

# Versions from meson.
expect_rc 0 "$R$CAPVAULT_BINDIR/capvaultd" --version
check "capvaultd --version" "capvaultd $CAPVAULT_VERSION" "$(cat "$T/out")"
expect_rc 0 "$R$CAPVAULT_BINDIR/capvault" --version
check "capvault --version" "capvault $CAPVAULT_VERSION" "$(cat "$T/out")"

# The installed front runs the installed engine (found from its own folder
# under the --destdir root; the build tree's is not beside it): a query
# with no daemon opens the store, and another command's bad option is the
# engine's usage error. A front with no engine to run says so.
"$MKCAP" --packets 50 -o "$T/one.pcap" > /dev/null
expect_rc 0 "$R$CAPVAULT_BINDIR/capvault" import --store "$T/store" "$T/one.pcap"
expect_rc 0 "$R$CAPVAULT_BINDIR/capvault" query --store "$T/store" --count
check "installed query through the installed engine" "50" "$(cat "$T/out")"
expect_rc 2 "$R$CAPVAULT_BINDIR/capvault" ls --store "$T/store" --bogus
check "the engine's usage" "usage: capvault ls [--store DIR] [--tag T] [--json]" "$(tail -1 "$T/err")"
if [ ! -e "$CAPVAULT_ENGINE" ]; then
	mkdir "$T/alone"
	cp "$R$CAPVAULT_BINDIR/capvault" "$T/alone/"
	expect_rc 1 "$T/alone/capvault" ls --store "$T/store"
	check "no engine" "capvault: cannot run capvault-offline" "$(cut -d' ' -f1-4 "$T/err")"
fi

# The configuration: the server one, pointing at the state folder.
check "installed config" "" "$(cmp "$conf" "$CAPVAULT_SOURCE/systemd/capvault.yaml" 2>&1)"
check "config store" "store: /var/lib/capvault/store" "$(grep '^store:' "$conf")"
check "config import" "  - path: /var/lib/capvault/autoimport" "$(grep -- '- path:' "$conf")"
mkdir -p "$T/var/lib/capvault/autoimport" "$T/var/lib/capvault/store"
sed "s|/var/lib/capvault|$T/var/lib/capvault|g" "$conf" > "$T/moved.yaml"
expect_rc 0 "$R$CAPVAULT_BINDIR/capvaultd" --check-config "$T/moved.yaml"
check "installed config checks" "configuration OK" "$(cat "$T/out")"

# A second install keeps an administrator's edits.
echo "# edited by the administrator" >> "$conf"
chmod 0640 "$conf"
before=$(sha256sum < "$conf")
do_install
check "re-install keeps the edited config" "$before" "$(sha256sum < "$conf")"
check "re-install keeps its mode" "640" "$(stat -c %a "$conf")"
checks=$((checks + 1))
[ ! -e "$conf.new" ] || fail "a $conf.new was left behind"

# The unit names the installed paths and the io_uring calls.
check "ExecStart" \
	"ExecStart=$CAPVAULT_BINDIR/capvaultd --config $CAPVAULT_SYSCONFDIR/capvault/capvault.yaml" \
	"$(grep '^ExecStart=' "$unit")"
for call in io_uring_setup io_uring_enter io_uring_register; do
	checks=$((checks + 1))
	grep -q "^SystemCallFilter=@system-service.* $call\b" "$unit" ||
		fail "the unit's SystemCallFilter= does not allow $call"
done

if ! command -v systemd-analyze >/dev/null; then
	echo "systemd-analyze not found: unit, sysusers and tmpfiles checks skipped"
	finish
	exit $(( failures ? 1 : 77 ))
fi

# verify checks that the commands and man pages exist: point the copy it
# reads at the installed tree.
sed "s|$CAPVAULT_BINDIR/capvaultd|$R$CAPVAULT_BINDIR/capvaultd|g" "$unit" > "$T/capvault.service"
if [ "${CAPVAULT_HAVE_SCDOC:-}" = 1 ]; then
	MANPATH=$R$CAPVAULT_MANDIR expect_rc 0 systemd-analyze verify "$T/capvault.service"
else
	expect_rc 0 systemd-analyze verify --man=no "$T/capvault.service"
fi
check "systemd-analyze verify output" "" "$(cat "$T/out" "$T/err")"

expect_rc 0 systemd-analyze security --offline=yes --threshold=20 "$T/capvault.service"
level=$(grep -o 'Overall exposure level for capvault.service: [0-9.]* [A-Z]*' "$T/out")
echo "$level"
check "exposure rated OK" "OK" "${level##* }"

# sysusers and tmpfiles, applied to a scratch root.
S=$T/sysroot
mkdir -p "$S/etc"
expect_rc 0 systemd-sysusers --root="$S" "$R$CAPVAULT_SYSUSERSDIR/capvault.conf"
pw=$(grep '^capvault:' "$S/etc/passwd" || true)
check "system user's home" "/var/lib/capvault" "$(echo "$pw" | cut -d: -f6)"
check "system user's shell" "/usr/sbin/nologin" "$(echo "$pw" | cut -d: -f7)"
checks=$((checks + 1))
[ "$(echo "$pw" | cut -d: -f3)" -lt 1000 ] || fail "capvault is not a system user: $pw"
checks=$((checks + 1))
grep -q '^capvault:' "$S/etc/group" || fail "no capvault group"
if [ -f "$S/etc/shadow" ]; then
	check "no password" "!*" "$(grep '^capvault:' "$S/etc/shadow" | cut -d: -f2)"
fi
expect_rc 0 systemd-tmpfiles --root="$S" --create "$R$CAPVAULT_TMPFILESDIR/capvault.conf"
check "state folder mode" "750" "$(stat -c %a "$S/var/lib/capvault")"
check "store mode" "750" "$(stat -c %a "$S/var/lib/capvault/store")"
check "import folder mode" "2770" "$(stat -c %a "$S/var/lib/capvault/autoimport")"
check "runtime folder mode" "750" "$(stat -c %a "$S/run/capvault")"

finish
