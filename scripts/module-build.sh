#!/usr/bin/env bash
# Builds, installs or cleans orion_dm.ko against a kernel build tree (a full build or its
# headers) with the toolchain that built that kernel, and says plainly what is missing when
# that cannot work. Used by dkms.conf and by `make modules_install`/`make install`.
# Usage: module-build.sh KDIR [KBUILD_TARGET|VAR=VALUE...]   (default target: modules)
# RUSTC, BINDGEN and LLVM in the environment override what is found.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
kdir=${1:?usage: module-build.sh KDIR [KBUILD_TARGET|VAR=VALUE...]}
shift
[ $# -gt 0 ] || set -- modules

fail() {
	echo "orion-dm: $*" >&2
	exit 1
}

conf=$kdir/include/config/auto.conf
[ -f "$conf" ] || fail "$kdir is not a configured kernel build tree (no include/config/auto.conf);" \
	"give the kernel's build directory, e.g. /lib/modules/<version>/build with its headers installed"
kver=$(cat "$kdir/include/config/kernel.release" 2>/dev/null || echo "at $kdir")
# auto.conf quotes strings in some kernel versions and not in others.
value() { sed -n "s/^$1=//p" "$conf" | sed 's/^"\(.*\)"$/\1/'; }

# The tree's own clean needs no toolchain.
if [ "$*" = clean ]; then
	exec make -C "$kdir" M="$src" clean
fi

missing=()
for opt in CONFIG_RUST CONFIG_BLK_DEV_DM CONFIG_DM_BUFIO; do
	case $(value $opt) in
	y | m) ;;
	*) missing+=("$opt") ;;
	esac
done
[ ${#missing[@]} = 0 ] || fail "kernel $kver is built without ${missing[*]}." \
	"orion_dm needs Rust support (CONFIG_RUST=y), device-mapper (CONFIG_BLK_DEV_DM) and" \
	"dm-bufio (CONFIG_DM_BUFIO, selected by CONFIG_DM_THIN_PROVISIONING or CONFIG_DM_SNAPSHOT)."
[ -f "$kdir/rust/libkernel.rmeta" ] || fail "$kdir has no Rust build products" \
	"(rust/libkernel.rmeta): Rust modules build against the kernel crate of that very build;" \
	"install headers that carry rust/, or give the kernel's build directory."

# Rust has no stable ABI: a module must be compiled by the rustc that compiled the kernel's
# crates, which the kernel records in its configuration.
[ -n "${HOME:-}" ] && PATH=$HOME/.cargo/bin:$PATH
want=$(value CONFIG_RUSTC_VERSION_TEXT)
rustc=
tried=()
for c in ${RUSTC:-} /usr/bin/rustc rustc; do
	c=$(command -v "$c" 2>/dev/null) || continue
	v=$("$c" --version 2>/dev/null) || continue
	if [ -z "$want" ] || [ "$v" = "$want" ]; then
		rustc=$c
		break
	fi
	tried+=("$c is '$v'")
done
[ -n "$rustc" ] || fail "kernel $kver was built by '$want'; Rust modules must be built by that" \
	"same compiler, and none was found ($(IFS=';' && echo "${tried[*]:-no rustc on PATH}")). Install it, or set RUSTC."

bindgen=$(command -v "${BINDGEN:-bindgen}" 2>/dev/null) || fail "bindgen not found: the module's" \
	"device-mapper bindings are generated from this kernel's headers. Install bindgen-cli" \
	"(cargo install --locked bindgen-cli) or set BINDGEN."

flags=(RUSTC="$rustc" HOSTRUSTC="$rustc" BINDGEN="$bindgen")
# A kernel built by clang needs the same for the module's C glue and for bindgen's flags.
if [ "$(value CONFIG_CC_IS_CLANG)" = y ]; then
	command -v clang >/dev/null || fail "kernel $kver was built by clang (LLVM=1); install clang, lld and llvm"
	flags+=(LLVM="${LLVM:-1}")
fi

exec make -C "$kdir" M="$src" "${flags[@]}" -j"$(nproc)" "$@"
