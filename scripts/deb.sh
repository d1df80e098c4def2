#!/usr/bin/env bash
# Builds the Debian packages into build/deb (or ORION_DEB_OUT):
#   orion-dm-dkms   the module's source for DKMS and the modprobe.d configuration, by
#                   debhelper (dh_dkms) from packaging/debian, in a clean copy of the sources
#                   so that the checkout's build products stay out of it;
#   orion-dm-tools  orion-lvm and orion-thin with their man pages and shell completions
#                   (generated from the CLI definitions by tools/dist), by cargo-deb.
# Prints the paths of the two packages.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

out=${ORION_DEB_OUT:-$ORION_ROOT/build/deb}
missing=()
for tool in dpkg-buildpackage dh dh_dkms cargo cargo-deb; do
	command -v "$tool" >/dev/null || missing+=("$tool")
done
[ ${#missing[@]} = 0 ] || {
	orion_log "make deb needs ${missing[*]}: run make setup, or apt-get install dpkg-dev" \
		"debhelper dh-dkms and cargo install --locked cargo-deb (with rustup's cargo)"
	exit 1
}
rm -rf "$out"
mkdir -p "$out"

changelog=$ORION_ROOT/packaging/debian/changelog
deb_version=$(dpkg-parsechangelog -l "$changelog" -SVersion)
version=${deb_version%-*}
# One version everywhere: the Debian changelog, dkms.conf and the tools' workspace.
grep -qx "PACKAGE_VERSION=\"$version\"" "$ORION_ROOT/dkms.conf" ||
	{ orion_log "dkms.conf's PACKAGE_VERSION is not $version (packaging/debian/changelog)"; exit 1; }
grep -qx "version = \"$version\"" "$ORION_ROOT/tools/Cargo.toml" ||
	{ orion_log "tools/Cargo.toml's version is not $version (packaging/debian/changelog)"; exit 1; }

# orion-dm-dkms: the DKMS source tree, and what debian/rules installs besides it.
src=$(bash "$ORION_ROOT/scripts/dkms-source.sh" "$out/src")
(
	cd "$ORION_ROOT"
	git ls-files --cached --others --exclude-standard -- packaging README.md Documentation/packaging.md |
		while read -r f; do
			if [ -e "$f" ]; then cp --parents -p "$f" "$src/"; fi
		done
)
mv "$src/packaging/debian" "$src/debian"
orion_log "dpkg-buildpackage (orion-dm-dkms); log: $out/orion-dm-dkms.build.log"
if ! (cd "$src" && dpkg-buildpackage --build=all -us -uc) >"$out/orion-dm-dkms.build.log" 2>&1; then
	tail -n 30 "$out/orion-dm-dkms.build.log" >&2
	exit 1
fi
mv "$out/src/"*.deb "$out/"

# orion-dm-tools: cargo-deb packs what the workspace builds; the man pages and completions
# come from orion-dist first (the asset paths in tools/dist/Cargo.toml).
orion_log "cargo deb (orion-dm-tools)"
cd "$ORION_ROOT/tools"
cargo build --quiet --release -p orion-lvm -p orion-thin -p orion-dist
rm -rf "$ORION_ROOT/build/orion-dm-tools"
target/release/orion-dist "$ORION_ROOT/build/orion-dm-tools"
# --strip: the release profile keeps line tables for the tests' backtraces; the package
# does not need them.
cargo deb --quiet -p orion-dist --no-build --strip -o "$out" >/dev/null

ls "$out"/*.deb
