#!/usr/bin/env bash
# Builds the guest kernel and its modules into the cache, or reuses a cached build.
# Prints the build directory (usable as KDIR) on stdout.
# ORION_KERNEL_VARIANT=debug adds KASAN, lockdep, atomic-sleep checks, kmemleak, UBSAN and
# fault injection (failslab, fail_page_alloc with the stack-trace filter).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

src=$(orion_kernel_src)
out=$(orion_kernel_build_dir)

if [ -f "$out/.orion-built" ]; then
	echo "$out"
	exit 0
fi

if [ ! -f "$src/Makefile" ]; then
	orion_log "extracting $ORION_KERNEL_TARBALL"
	mkdir -p "$ORION_CACHE/src"
	tmp=$(mktemp -d "$ORION_CACHE/src/.extract.XXXXXX")
	tar -xf "$ORION_KERNEL_TARBALL" -C "$tmp"
	rm -rf "$src"
	mv "$tmp/linux-source-6.12" "$src"
	rmdir "$tmp"
fi

mkdir -p "$out"
kmake() { make -s -C "$src" O="$out" "${ORION_KMAKE_FLAGS[@]}" "$@"; }

orion_log "configuring kernel ($ORION_KERNEL_VARIANT) in $out"
kmake allnoconfig >/dev/null
mapfile -t frags < <(orion_fragments)
(cd "$out" && "$src/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" "${frags[@]}" >/dev/null)
kmake olddefconfig >/dev/null

# Every option the fragments ask for must have survived olddefconfig.
bad=0
for frag in "${frags[@]}"; do
	while IFS= read -r line; do
		case "$line" in
		CONFIG_*=*)
			grep -qxF "$line" "$out/.config" || { orion_log "config: wanted $line, got: $(grep "^${line%%=*}=" "$out/.config" || echo unset)"; bad=1; }
			;;
		"# CONFIG_"*" is not set")
			opt=${line#"# "}; opt=${opt%% *}
			! grep -q "^$opt=" "$out/.config" || { orion_log "config: wanted $opt unset"; bad=1; }
			;;
		esac
	done <"$frag"
done
[ "$bad" = 0 ] || { orion_log "kernel config does not match the fragment (is the Rust toolchain available? try: make -C $src ${ORION_KMAKE_FLAGS[*]} rustavailable)"; exit 1; }

orion_log "building kernel and modules (-j$(nproc)); log: $out/build.log"
start=$(date +%s)
if ! kmake -j"$(nproc)" bzImage modules >"$out/build.log" 2>&1; then
	tail -n 40 "$out/build.log" >&2
	exit 1
fi
rm -rf "$out/modroot"
kmake INSTALL_MOD_PATH="$out/modroot" modules_install >/dev/null
orion_log "kernel built in $(($(date +%s) - start)) s"
touch "$out/.orion-built"
echo "$out"
