#!/bin/sh
# install-config.sh SOURCE DEST - meson install script: installs the
# configuration at DEST (under $DESTDIR) only when nothing is there yet,
# so `meson install` never overwrites an administrator's edits.
set -eu
src=$1
dest=${DESTDIR:-}$2
if [ -n "${MESON_INSTALL_DRY_RUN:-}" ]; then
	exit 0
fi
if [ -e "$dest" ] || [ -L "$dest" ]; then
	echo "Keeping existing $dest"
	exit 0
fi
mkdir -p "$(dirname "$dest")"
# Written beside its final name, then renamed: never a half-written file.
install -m 0644 "$src" "$dest.new"
mv -f "$dest.new" "$dest"
echo "Installing $src to $dest"
