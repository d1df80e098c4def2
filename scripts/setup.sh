#!/usr/bin/env bash
# Installs everything the build, the VM harness and the tests need.
# Idempotent: prints nothing when all of it is already present.
set -euo pipefail

DEB_PKGS=(
	# Kernel build (LLVM=1, Rust).
	build-essential bc bison flex libelf-dev libssl-dev cpio kmod xz-utils
	clang lld llvm libclang-dev rustc-web rust-web-src rust-web-clippy
	linux-source-6.12
	# VM and guest userspace.
	qemu-system-x86 busybox-static dmsetup lvm2 dmeventd thin-provisioning-tools fio e2fsprogs
	# Guest profiles (ORION_BENCH=profile make bench).
	linux-perf
	# Packaging (make deb) and its checks.
	debhelper dh-dkms dkms fakeroot lintian
)

missing=()
for p in "${DEB_PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "setup: installing Debian packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	log=$(mktemp)
	if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
		cat "$log" >&2
		echo "setup: apt-get failed" >&2
		exit 1
	fi
	rm -f "$log"
fi

# bindgen-cli from crates.io (the kernel's Rust build and our module bindings need it).
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v bindgen >/dev/null 2>&1; then
	echo "setup: installing bindgen-cli"
	cargo install --locked --quiet bindgen-cli --version 0.73.0 >/dev/null 2>&1 ||
		cargo install --locked --quiet bindgen-cli
fi
# cargo-deb packs orion-dm-tools (make deb).
if ! command -v cargo-deb >/dev/null 2>&1; then
	echo "setup: installing cargo-deb"
	cargo install --locked --quiet cargo-deb
fi
