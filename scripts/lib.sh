# Shared paths and flags for the build and VM scripts; sourced, not run.
# shellcheck shell=bash

ORION_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ORION_CACHE=${ORION_CACHE:-$HOME/.cache/orion-dm}
ORION_KERNEL_VARIANT=${ORION_KERNEL_VARIANT:-release}
ORION_KERNEL_TARBALL=${ORION_KERNEL_TARBALL:-/usr/src/linux-source-6.12.tar.xz}
export PATH="$HOME/.cargo/bin:$PATH"

# The kernel's Rust needs Debian's rustc (it ships core/alloc sources); the rustup one does not.
ORION_KMAKE_FLAGS=(LLVM=1 RUSTC=/usr/bin/rustc HOSTRUSTC=/usr/bin/rustc BINDGEN=bindgen)

orion_fragments() {
	echo "$ORION_ROOT/scripts/config/orion.config"
	if [ "$ORION_KERNEL_VARIANT" = debug ]; then
		echo "$ORION_ROOT/scripts/config/debug.config"
	fi
}

# The cache key covers the kernel tarball, the config fragments and the toolchain.
orion_kernel_key() {
	{
		stat -c '%s %Y' "$ORION_KERNEL_TARBALL"
		orion_fragments | xargs cat
		/usr/bin/rustc --version
		clang --version | head -n 1
		bindgen --version
	} | sha256sum | cut -c1-12
}

orion_kernel_src() {
	echo "$ORION_CACHE/src/linux-source-6.12"
}

orion_kernel_build_dir() {
	echo "$ORION_CACHE/kernel/$ORION_KERNEL_VARIANT-$(orion_kernel_key)"
}

orion_log() {
	echo "[orion] $*" >&2
}
