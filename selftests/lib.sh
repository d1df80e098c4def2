#!/bin/sh
# Helpers for the guest selftests: TAP output, modules, ramdisks and dm devices.

TAP_COUNTER=/tmp/tap.counter
KVER=$(uname -r)
ORION_KO=/lib/modules/$KVER/extra/orion_dm.ko

tap_next() {
	n=$(($(cat "$TAP_COUNTER") + 1))
	echo "$n" >"$TAP_COUNTER"
	echo "$n"
}

# tap_ok DESC / tap_not_ok DESC [DIAGNOSTIC...]
tap_ok() { echo "ok $(tap_next) - $1"; }
tap_not_ok() {
	echo "not ok $(tap_next) - $1"
	shift
	for line in "$@"; do
		printf '%s\n' "$line" | sed 's/^/#   /'
	done
}
tap_skip() { echo "ok $(tap_next) - $1 # SKIP $2"; }

# check DESC CMD...: passes when CMD exits 0; its output becomes the diagnostic.
check() {
	desc=$1
	shift
	if out=$("$@" 2>&1); then
		tap_ok "$desc"
	else
		tap_not_ok "$desc" "command: $*" "exit: $?" "$out"
	fi
}

# check_fails DESC CMD...: passes when CMD exits non-zero.
check_fails() {
	desc=$1
	shift
	if out=$("$@" 2>&1); then
		tap_not_ok "$desc" "command unexpectedly succeeded: $*" "$out"
	else
		tap_ok "$desc"
	fi
}

# check_eq DESC EXPECTED ACTUAL
check_eq() {
	if [ "$2" = "$3" ]; then
		tap_ok "$1"
	else
		tap_not_ok "$1" "expected: $2" "actual:   $3"
	fi
}

die() {
	echo "# fatal: $*"
	exit 1
}

load_orion() {
	grep -q '^orion_dm ' /proc/modules || insmod "$ORION_KO" prefix="${1-orion-}"
}

unload_orion() {
	if grep -q '^orion_dm ' /proc/modules; then rmmod orion_dm; fi
}

# ramdisks COUNT SIZE_MIB: /dev/ram0.. of SIZE_MIB each, zero-filled.
ramdisks() {
	modprobe brd rd_nr="$1" rd_size=$(($2 * 1024)) max_part=0 || die "modprobe brd failed"
}

# dm_create NAME TABLE: creates /dev/mapper/NAME.
dm_create() {
	dmsetup create "$1" --table "$2"
}

# dm_reload NAME TABLE: loads TABLE and resumes.
dm_reload() {
	dmsetup suspend "$1" && dmsetup load "$1" --table "$2" && dmsetup resume "$1"
}

# dm_minor NAME: the dm-N kernel name of a device.
dm_kname() {
	basename "$(readlink -f "/dev/mapper/$1")"
}

sectors() { blockdev --getsz "$1"; }

# The error dm core logged for the last failed table load, without the device name and
# target type: "Invalid argument count (-EINVAL)".
last_table_error() {
	dmesg | grep 'device-mapper: table: ' | tail -n 1 | sed -E 's/.*device-mapper: table: [0-9]+:[0-9]+: //; s/^[a-z-]+: //'
}

# table_of NAME / status_of NAME: the lines with the target type renamed to its C name.
table_of() { dmsetup table "$1" | sed 's/ orion-/ /'; }
status_of() { dmsetup status "$1" | sed 's/ orion-/ /'; }

# queue_limits NAME: every queue attribute of the device, one "file=value" a line.
queue_limits() {
	q=/sys/block/$(dm_kname "$1")/queue
	for f in "$q"/*; do
		[ -f "$f" ] && [ -r "$f" ] || continue
		echo "$(basename "$f")=$(cat "$f" 2>/dev/null)"
	done
}

# fill DEV BYTES SEED_FILE: writes BYTES of random data to DEV, keeping a copy in SEED_FILE.
fill_random() {
	head -c "$2" /dev/urandom >"$3"
	dd if="$3" of="$1" bs=64k conv=fsync 2>/dev/null
}

drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}

# same_bytes A B BYTES: compares the first BYTES of two files or devices.
same_bytes() {
	drop_caches
	cmp -n "$3" "$1" "$2"
}

cleanup_all() {
	umount /mnt 2>/dev/null
	dmsetup remove_all --force >/dev/null 2>&1
	for l in /dev/loop*; do losetup -d "$l" 2>/dev/null; done
	unload_orion 2>/dev/null
	rmmod brd 2>/dev/null
	rm -rf /tmp/t.*
	true
}
