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
	modprobe dm-bufio 2>/dev/null; grep -q "^orion_dm " /proc/modules || insmod "$ORION_KO" prefix="${1-orion-}"
}

unload_orion() {
	if grep -q '^orion_dm ' /proc/modules; then rmmod orion_dm; fi
}

# kmemleak_report: what kmemleak finds after two scans (the debug kernel has it; the second
# scan reports what the first one saw as unreferenced); empty without kmemleak.
has_kmemleak() {
	[ -d /sys/kernel/debug/block ] || mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
	[ -f /sys/kernel/debug/kmemleak ]
}
kmemleak_report() {
	has_kmemleak || return 0
	echo scan >/sys/kernel/debug/kmemleak
	sleep 6
	echo scan >/sys/kernel/debug/kmemleak
	cat /sys/kernel/debug/kmemleak
}

# ramdisks COUNT SIZE_MIB: /dev/ram0.. of SIZE_MIB each, zero-filled.
ramdisks() {
	modprobe brd rd_nr="$1" rd_size=$(($2 * 1024)) max_part=0 || die "modprobe brd failed"
}

# dm_create NAME TABLE: creates /dev/mapper/NAME; TABLE may have several lines.
dm_create() {
	printf '%s\n' "$2" | dmsetup create "$1"
}

# dm_reload NAME TABLE: loads TABLE and resumes.
dm_reload() {
	dmsetup suspend "$1" && printf '%s\n' "$2" | dmsetup load "$1" && dmsetup resume "$1"
}

# orion_type TYPE: our target type beside C's (names that would not fit dm's 15 bytes with
# the prefix take a short form).
orion_type() {
	case $1 in
	snapshot-origin) echo orion-s-origin ;;
	snapshot-merge) echo orion-s-merge ;;
	*) echo "orion-$1" ;;
	esac
}

# twin TABLE: the same table with every orion- target type given its C name.
c_twin() {
	printf '%s\n' "$1" | sed 's/ orion-s-origin/ snapshot-origin/; s/ orion-s-merge/ snapshot-merge/; s/ orion-/ /'
}

# bad_table TYPE "LEN ARGS" DESC [stricter]: the table is refused by orion-TYPE, and by the
# C TYPE with the same message (dm core logs "<type>: <ti->error> (<errno>)"). With
# "stricter", ours refuses in the constructor what C leaves to dm core's later checks, so
# only the refusal is compared.
bad_table() {
	len=${2%% *}
	args=${2#* }
	[ "$args" = "$2" ] && args=
	dmesg -c >/dev/null
	if dmsetup create t.bad --table "0 $len $(orion_type "$1") $args" >/dev/null 2>&1; then
		dmsetup remove t.bad
		tap_not_ok "$1 refuses $3" "$(orion_type "$1") accepted: 0 $2"
		return
	fi
	ours=$(last_table_error)
	dmesg -c >/dev/null
	if dmsetup create t.bad --table "0 $len $1 $args" >/dev/null 2>&1; then
		dmsetup remove t.bad
		theirs="(accepted by C)"
	else
		theirs=$(last_table_error)
	fi
	if [ "${4-}" = stricter ]; then
		if [ -n "$ours" ] && [ "$theirs" != "(accepted by C)" ]; then
			tap_ok "$1 refuses $3: $ours (C: $theirs)"
		else
			tap_not_ok "$1 refuses $3" "ours: $ours" "C: $theirs"
		fi
		return
	fi
	check_eq "$1 refuses $3: $ours" "$theirs" "$ours"
}

# dm_kname NAME: the dm-N kernel name of a device.
dm_kname() {
	echo "dm-$(dmsetup info -c -o minor --noheadings "$1")"
}

sectors() { blockdev --getsz "$1"; }

# The error dm core logged for the last failed table load, without the device name and
# target type: "Invalid argument count (-EINVAL)".
last_table_error() {
	dmesg | grep 'device-mapper: table: ' | tail -n 1 | sed -E 's/.*device-mapper: table: [0-9]+:[0-9]+: //; s/^[a-z-]+: //'
}

# table_of NAME / status_of NAME: the lines with the target type renamed to its C name.
table_of() { c_twin "$(dmsetup table "$1")"; }
status_of() { c_twin "$(dmsetup status "$1")"; }

# queue_limits NAME: every queue attribute of the device, one "file=value" a line.
queue_limits() {
	q=/sys/block/$(dm_kname "$1")/queue
	[ -d "$q" ] || {
		echo "no queue directory for $1: $q"
		return 1
	}
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

# stat_field DISK N: field N (1-based) of /sys/block/DISK/stat (7 write sectors,
# 14 discard sectors, 16 flushes).
stat_field() {
	awk -v n="$2" '{ print $n }' "/sys/block/$1/stat"
}

# stat_delta FIELD "DISK..." CMD...: runs CMD and prints how much FIELD grew on each disk.
stat_delta() {
	field=$1
	disks=$2
	shift 2
	before=$(for d in $disks; do stat_field "$d" "$field"; done | tr '\n' ' ')
	"$@" >/dev/null 2>&1 || {
		echo "failed: $*"
		return 1
	}
	after=$(for d in $disks; do stat_field "$d" "$field"; done | tr '\n' ' ')
	echo "$before|$after" | awk -F'|' '{
		n = split($1, b, " "); split($2, a, " ")
		for (i = 1; i <= n; i++) printf "%s%d", (i > 1 ? " " : ""), a[i] - b[i]
		print ""
	}'
}

# region DEV START_SECTOR SECTORS: the bytes of a range of a device, on stdout.
region() {
	dd if="$1" bs=512 skip="$2" count="$3" 2>/dev/null
}

# is_zero DEV START_SECTOR SECTORS: the range reads back as zeroes.
is_zero() {
	region "$1" "$2" "$3" | cmp -n $(($3 * 512)) - /dev/zero
}

# same_region DEV START SECTORS FILE [FILE_START]: SECTORS of DEV from START equal those of
# FILE (a file or device) from FILE_START (default 0).
same_region() {
	region "$1" "$2" "$3" >/tmp/t.region1
	region "$4" "${5:-0}" "$3" >/tmp/t.region2
	cmp /tmp/t.region1 /tmp/t.region2
	rc=$?
	rm -f /tmp/t.region1 /tmp/t.region2
	return $rc
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

# reload_cycle NAME TABLE_DIR: until /tmp/t.stop exists, loads each table in TABLE_DIR in
# turn (files named <n>.<sectors>) into NAME with suspend/load/resume, and checks the size
# after resume. Writes the reload count to /tmp/t.reloads and problems to /tmp/t.reload-errors.
reload_cycle() {
	: >/tmp/t.reload-errors
	n=0
	while [ ! -f /tmp/t.stop ]; do
		for f in "$2"/*; do
			want=${f##*.}
			if ! dm_reload "$1" "$(cat "$f")" >>/tmp/t.reload-errors 2>&1; then
				echo "reload of $f failed" >>/tmp/t.reload-errors
				dmsetup resume "$1" 2>/dev/null
			fi
			got=$(blockdev --getsz "/dev/mapper/$1")
			[ "$got" = "$want" ] || echo "after $f: $got sectors, expected $want" >>/tmp/t.reload-errors
			n=$((n + 1))
			sleep 0.1
		done
	done
	echo "$n" >/tmp/t.reloads
}

# fio_verify DEV FIO_ARGS...: a fio job on DEV that verifies what it wrote (crc32c, stops at
# the first mismatch); fio's output is printed when it fails.
fio_verify() {
	dev=$1
	shift
	fio --name=verify --filename="$dev" --direct=1 --verify=crc32c --verify_fatal=1 \
		--output=/tmp/t.fio "$@" >/dev/null 2>&1 || {
		cat /tmp/t.fio
		return 1
	}
}

# under_reloads NAME TABLE_DIR CMD...: runs CMD while reload_cycle works on NAME; passes
# when CMD passes, at least one reload happened and every reload worked.
under_reloads() {
	name=$1
	dir=$2
	shift 2
	rm -f /tmp/t.stop /tmp/t.reloads
	reload_cycle "$name" "$dir" &
	rpid=$!
	"$@"
	rc=$?
	touch /tmp/t.stop
	wait "$rpid"
	reloads=$(cat /tmp/t.reloads)
	echo "reloads: $reloads"
	cat /tmp/t.reload-errors
	[ "$rc" = 0 ] && [ "$reloads" -gt 0 ] && [ ! -s /tmp/t.reload-errors ]
}

# ima_table_load NAME: what dm core measured into IMA for NAME's last table load (device
# metadata, then each target's STATUSTYPE_IMA text), with the device name, minor and orion-
# prefixes normalised. Needs the ima-buf template (see scripts/vm-run.sh).
ima_table_load() {
	f=/sys/kernel/security/ima/ascii_runtime_measurements
	[ -r "$f" ] || {
		echo "no IMA measurement list at $f"
		return 1
	}
	awk '$5 == "dm_table_load" { print $6 }' "$f" | while read -r hex; do
		echo "$hex" | xxd -r -p
		echo
	done | grep "name=$1," | tail -n 1 |
		sed -E "s/name=$1,/name=DEV,/; s/minor=[0-9]+,/minor=N,/; s/orion-//g"
}

# same_ima OURS C: both devices' table loads were measured, with the same text.
same_ima() {
	a=$(ima_table_load "$1") || return 1
	b=$(ima_table_load "$2") || return 1
	echo "ours: $a"
	echo "C:    $b"
	[ -n "$a" ] && [ "$a" = "$b" ]
}

# same_limits OURS C: the devices have the same queue limits.
same_limits() {
	a=$(queue_limits "$1") || return 1
	b=$(queue_limits "$2") || return 1
	[ -n "$a" ] && [ "$a" = "$b" ] && return 0
	echo "ours: $a"
	echo "C:    $b"
	return 1
}

# dm_tables_by_name: every table with major:minor replaced by device names, sorted, so
# stacks built by two tools compare equal.
dm_tables_by_name() {
	dmsetup info -c --noheadings -o major,minor,name --separator ' ' >/tmp/t.map
	dmsetup table | awk 'NR == FNR { m[$1 ":" $2] = $3; next }
		{ for (i = 1; i <= NF; i++) if ($i in m) $i = m[$i]; print }' /tmp/t.map - | sort
}

# dm_info_by_lv VG: name, DM UUID (its LV UUID replaced by the LV's name, suffix kept)
# and attributes of every device, sorted: LVM2's naming, comparable across LVs re-made.
dm_info_by_lv() {
	lvs -a --noheadings -o lv_uuid,lv_name "$1" |
		awk '{ gsub("-", "", $1); gsub(/[][]/, "", $2); print $1, $2 }' >/tmp/t.uuids
	dmsetup info -c --noheadings -o name,uuid,attr --separator ' ' |
		awk 'NR == FNR { m[$1] = $2; next }
			{ u = substr($2, 37, 32); print $1, substr($2, 1, 36) "<" m[u] ">" substr($2, 69), $3 }' \
			/tmp/t.uuids - | sort
}

# Thin pool selftests drive ours (o, orion- targets) and C's (c) side by side: ours on
# ram0 (metadata) and ram1 (data), C's on ram2 and ram3. thin_pair sets om, od, cm, cd and
# plen (the data ramdisk's sectors); the ramdisks must exist.
thin_pair() {
	om=/dev/ram0 od=/dev/ram1 cm=/dev/ram2 cd=/dev/ram3
	plen=$(sectors $od)
}
prefix_for() { [ "$1" = o ] && echo orion-; }
# type_for o|c TYPE: the target type on our side or on C's.
type_for() { if [ "$1" = o ]; then orion_type "$2"; else echo "$2"; fi; }
meta_for() { [ "$1" = o ] && echo $om || echo $cm; }
data_for() { [ "$1" = o ] && echo $od || echo $cd; }

# pool_status NAME: a pool's status with the used-metadata count replaced by "M" (btree
# node splits are an implementation choice, see Documentation/thin-pool.md).
pool_status() {
	status_of "$1" | awk '{ split($5, m, "/"); $5 = "M/" m[2]; print }'
}

# Crash tests (orion-crash walk writes /tmp/t.walk).

# crash_setup: address space randomisation off for the test (under TCG a process start
# costs several times more with it: each new layout is translated afresh, and a crash test
# starts hundreds to thousands), and /tmp/t.marker, 1 MiB of the marker byte 0xa5.
crash_setup() {
	aslr=$(cat /proc/sys/kernel/randomize_va_space)
	echo 0 >/proc/sys/kernel/randomize_va_space
	trap 'echo "$aslr" >/proc/sys/kernel/randomize_va_space' EXIT
	head -c 1048576 /dev/zero | tr '\0' '\245' >/tmp/t.marker
}
# report DESC KIND: ok when the walk found no cut point failing that way, else not ok with
# the first of them.
report() {
	grep "^FAIL $2: " /tmp/t.walk | sed "s/^FAIL $2: //" >/tmp/t.fails
	if [ ! -s /tmp/t.fails ]; then
		tap_ok "$1"
	else
		tap_not_ok "$1" "$(wc -l </tmp/t.fails) failing cut points; the first:" "$(head -n 8 /tmp/t.fails)"
	fi
}

# problems FILE: "LOST OTHER" from verify's report: blocks missing acknowledged data (of
# any kind) and blocks holding what was never written there (every kind but lost and
# stale); "x x" without a report.
problems() {
	awk '/^problems:/ {
		for (i = 2; i <= NF; i++)
			if (split($i, kv, "=") == 2 && kv[1] != "lost" && kv[1] != "stale") o += kv[2]
		if (match($0, /missing in [0-9]+ blocks/)) l = substr($0, RSTART + 11, RLENGTH - 18)
		seen = 1
	}
	END { if (seen) print l + 0, o + 0; else print "x x" }' "$1"
}
