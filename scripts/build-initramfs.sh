#!/usr/bin/env bash
# Builds the guest initramfs: busybox, the dm/lvm/thin/fs tools from Debian with their
# shared libraries, the kernel's modules, orion_dm.ko and the selftests.
# Usage: build-initramfs.sh KDIR OUTPUT
set -euo pipefail
. "$(dirname "$0")/lib.sh"

kdir=$1
out=$2
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,lib,lib64,etc/lvm,dev,proc,sys,tmp,run,mnt,root,selftests}

cp /usr/bin/busybox "$stage/bin/busybox"
for applet in $("$stage/bin/busybox" --list); do
	[ -e "$stage/bin/$applet" ] || ln -s busybox "$stage/bin/$applet"
done

# Tools from Debian; each one replaces the busybox applet of the same name. The shell is
# dash: busybox's own shell runs its applets in preference to anything on PATH, which would
# shadow util-linux's losetup and blkdiscard and diffutils' cmp.
TOOLS=(
	/usr/bin/dash /usr/sbin/dmsetup /usr/sbin/lvm /usr/sbin/pdata_tools /usr/bin/fio
	/usr/sbin/mke2fs /usr/sbin/e2fsck /usr/sbin/blkdiscard /usr/sbin/losetup
	/usr/bin/cmp /usr/sbin/blockdev /usr/sbin/resize2fs
	"$ORION_ROOT/tools/target/release/orion-thin" "$ORION_ROOT/tools/target/release/orion-lvm"
	"$ORION_ROOT/tools/target/release/orion-fuzz"
	"$ORION_ROOT/tools/target/release/orion-crash" /usr/bin/kmod /sbin/dmeventd
)
# perf for the bench profiles (ORION_PERF=1; Debian's linux-perf, see setup.sh).
[ "${ORION_PERF:-0}" = 1 ] && TOOLS+=(/usr/bin/perf)
# dmeventd's LVM2 plugins (dlopen'ed by name, so ldd of dmeventd does not list them), for
# the selftest that compares orion-lvm monitor with real dmeventd.
PLUGINS=(/lib/x86_64-linux-gnu/libdevmapper-event-lvm2{thin,snapshot,mirror}.so)
for t in "${TOOLS[@]}"; do
	name=$(basename "$t")
	rm -f "$stage/bin/$name"
	cp "$t" "$stage/bin/$name"
done
# Our tools are built with line tables (profile.release debug = 1) for host backtraces; the
# guest copies drop them (about 90 MB of 190), which halves the time a debug kernel under
# TCG spends unpacking the initramfs. Symbols stay, so a guest panic still names functions.
for t in "$stage"/bin/orion-*; do
	llvm-strip --strip-debug "$t"
done
for l in sh:dash mkfs.ext4:mke2fs fsck.ext4:e2fsck thin_check:pdata_tools thin_dump:pdata_tools \
	thin_restore:pdata_tools thin_ls:pdata_tools thin_repair:pdata_tools \
	pvcreate:lvm pvs:lvm vgcreate:lvm vgs:lvm lvcreate:lvm lvs:lvm vgchange:lvm \
	lvremove:lvm vgremove:lvm pvremove:lvm lvextend:lvm lvreduce:lvm lvresize:lvm \
	lvchange:lvm lvconvert:lvm vgextend:lvm vgreduce:lvm pvmove:lvm vgck:lvm pvck:lvm; do
	rm -f "$stage/bin/${l%%:*}"
	ln -s "${l#*:}" "$stage/bin/${l%%:*}"
done

# Shared libraries of every dynamic binary and plugin, at their usual paths.
for p in "${PLUGINS[@]}"; do
	mkdir -p "$stage$(dirname "$p")"
	cp -L "$p" "$stage$p"
done
for t in "${TOOLS[@]}" "${PLUGINS[@]}"; do
	ldd "$t" | awk '/=>/ { print $3 } /^\t\/lib/ { print $1 }'
done | sort -u | while read -r lib; do
	[ -n "$lib" ] || continue
	mkdir -p "$stage$(dirname "$lib")"
	cp -L "$lib" "$stage$lib"
done
mkdir -p "$stage/lib64"
cp -L /lib64/ld-linux-x86-64.so.2 "$stage/lib64/"

# libdevmapper-event starts the daemon as /sbin/dmeventd.
ln -sf /bin/dmeventd "$stage/sbin/dmeventd"

# Kernel modules (C dm targets, brd, null_blk, loop) and ours.
cp -a "$kdir/modroot/lib/modules" "$stage/lib/"
kver=$(ls "$stage/lib/modules")
mkdir -p "$stage/lib/modules/$kver/extra"
cp "$ORION_ROOT/orion_dm.ko" "$stage/lib/modules/$kver/extra/"
depmod -b "$stage" "$kver"

# kmod's modprobe, depmod and modinfo, off PATH: the selftests keep busybox's applets, and
# the guest keeps no /sbin/modprobe (so the kernel autoloads nothing) except while the
# packaging selftest installs one, with the modprobe.d file that orion-dm-dkms ships.
mkdir -p "$stage/usr/libexec/kmod" "$stage/usr/share/orion-dm"
for c in modprobe depmod modinfo; do
	ln -s /bin/kmod "$stage/usr/libexec/kmod/$c"
done
cp "$ORION_ROOT/packaging/modprobe/orion-dm.conf" "$stage/usr/share/orion-dm/"

cp -a "$ORION_ROOT/selftests/." "$stage/selftests/"
cp "$ORION_ROOT/scripts/guest/init" "$stage/init"
cp "$ORION_ROOT/scripts/guest/demo.sh" "$stage/demo.sh"
cp "$ORION_ROOT/scripts/guest/bench.sh" "$stage/bench.sh"
cp "$ORION_ROOT/scripts/guest/lvm.conf" "$stage/etc/lvm/lvm.conf"
# e2fsprogs (resize2fs of a mounted file system) looks for mounts in /etc/mtab.
ln -s /proc/self/mounts "$stage/etc/mtab"
chmod +x "$stage/init"

(cd "$stage" && find . | cpio -o -H newc --quiet) >"$out.tmp"
mv "$out.tmp" "$out"
