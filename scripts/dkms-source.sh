#!/usr/bin/env bash
# Writes the module's DKMS source tree, what /usr/src/orion-dm-<version> holds: dkms.conf,
# Kbuild, rust/ and scripts/module-build.sh, as git knows them (tracked or new, not ignored),
# so that the checkout's build products stay out. Prints the directory.
# Usage: dkms-source.sh [PARENT]   (default: build/dkms; the tree is PARENT/orion-dm-<version>)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

version=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$ORION_ROOT/dkms.conf")
dest=$(mkdir -p "${1:-$ORION_ROOT/build/dkms}" && cd "${1:-$ORION_ROOT/build/dkms}" && pwd)/orion-dm-$version
rm -rf "$dest"
mkdir -p "$dest"
cd "$ORION_ROOT"
git ls-files --cached --others --exclude-standard -- dkms.conf Kbuild rust scripts/module-build.sh |
	while read -r f; do
		# A tracked file deleted in the checkout is not part of it.
		if [ -e "$f" ]; then cp --parents -p "$f" "$dest/"; fi
	done
echo "$dest"
