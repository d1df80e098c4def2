# orion-lvm monitor (dmeventd's job) in the guest, over the kernel's C targets: (a) a thin
# pool filling under fio verify is extended before it runs out (no I/O error); (b) the
# same pool filled step by step ends at the same size under our monitor and under real
# dmeventd with the same lvm.conf, and both tools load the same low water mark; (c) a
# snapshot is extended before it overflows and keeps its content, to the size real
# dmeventd reaches on the same steps; (d) a mirror image killed under fio verify is
# repaired per mirror_image_fault_policy (allocate: a new image on another PV,
# resynchronised; remove: the mirror becomes linear) with no lost write, and a killed
# disk log is replaced on another PV; (e) real vgck
# passes on the metadata after each repair. Last, on orion_dm's targets (prefix orion-):
# (a) on orion-thin-pool, (d) with allocate on orion-mirror, (c) on orion-snapshot.

ramdisks 4 128
modprobe dm-thin-pool
modprobe dm-snapshot
modprobe dm-mirror
vg=vgmon
threshold=70

# The settings both tools read from lvm.conf (dmeventd's own lvextend reads only the
# file); monitoring stays off in the file and is turned on for real LVM2's run in (b).
cp /etc/lvm/lvm.conf /tmp/t.lvm.conf.orig
trap 'cp /tmp/t.lvm.conf.orig /etc/lvm/lvm.conf; [ -f /run/dmeventd.pid ] && kill "$(cat /run/dmeventd.pid)" 2>/dev/null' EXIT
awk -v t=$threshold '{ print } /^activation \{/ {
	print "\tthin_pool_autoextend_threshold = " t
	print "\tthin_pool_autoextend_percent = 20"
	print "\tsnapshot_autoextend_threshold = " t
	print "\tsnapshot_autoextend_percent = 20"
	print "\tmirror_image_fault_policy = \"allocate\""
}' /tmp/t.lvm.conf.orig >/etc/lvm/lvm.conf
check_eq "real LVM2 reads the autoextend settings" "$threshold" \
	"$(lvm lvmconfig --type full activation/thin_pool_autoextend_threshold 2>&1 | sed 's/.*=//')"
check "orion-lvm vgcreate over four ramdisks" orion-lvm vgcreate $vg /dev/ram0 /dev/ram1 /dev/ram2 /dev/ram3

note() { printf '%s\n' "$@" | sed 's/^/# /'; }
size_s() { lvs --noheadings --units s --nosuffix -o lv_size "$1" | tr -d ' '; }
# pool_ok DEV: DEV is a thin pool whose data usage is at or below the threshold.
pool_ok() {
	dmsetup status "$1" | awk -v t=$threshold '$3 ~ /thin-pool$/ {
		split($6, a, "/"); seen = a[2] > 0; ok = a[1] * 100 <= t * a[2] }
		END { exit !(seen && ok) }'
}
# snap_ok DEV: DEV is a valid snapshot whose usage is at or below the threshold.
snap_ok() {
	dmsetup status "$1" | awk -v t=$threshold '$3 ~ /snapshot$/ {
		seen = split($4, a, "/") == 2 && a[2] > 0; ok = a[1] * 100 <= t * a[2] }
		END { exit !(seen && ok) }'
}
# settle CMD...: waits up to 60 s for CMD to pass.
settle() {
	n=0
	while [ $n -lt 600 ]; do
		"$@" && return 0
		sleep 0.1
		n=$((n + 1))
	done
	echo "still not settled: $*: $(dmsetup status "$2")"
	return 1
}
mon_pid=
start_monitor() {
	orion-lvm "$@" monitor -i 1 $vg 2>>/tmp/t.mon &
	mon_pid=$!
	sleep 1
}
stop_monitor() {
	[ -n "$mon_pid" ] && kill "$mon_pid" && wait "$mon_pid" 2>/dev/null
	mon_pid=
}
lwm() { dmsetup table "$1" | awk '{ print $6, $7 }'; }

# (a) A pool of 36 MiB under fio writing 96 MiB (with verify) to a thin volume. The pool
# sizes (9 extents, then +20% rounded up: 11, 14, 17, 21, 26, 32, 39) never make 70% a
# whole number of blocks: a pool observed at exactly 70% is not extended until it passes
# 75%, in dmeventd's plugin as in ours.
: >/tmp/t.mon
check "orion-lvm thin pool of 36 MiB" orion-lvm lvcreate --type thin-pool -L 36M -n pool $vg
check "thin volume of 256 MiB" orion-lvm lvcreate -V 256M -T $vg/pool -n th
check_eq "low water mark from the threshold: 30% of 576 blocks" "128 172" "$(lwm $vg-pool-tpool)"
start_monitor
fio --name=fill --filename=/dev/$vg/th --size=96M --rw=write --bs=256k --direct=1 \
	--ioengine=psync --verify=crc32c --verify_fatal=1 --output=/tmp/t.fio >/dev/null 2>&1
rc=$?
[ $rc -eq 0 ] || cat /tmp/t.fio
check_eq "fio (write and verify 96 MiB) sees no error while the pool grows" 0 $rc
settle pool_ok $vg-pool-tpool >/dev/null
stop_monitor
note "$(cat /tmp/t.mon)"
check "the pool grew past 96 MiB / 70%" sh -c "[ $(size_s $vg/pool)0 -ge $((96 * 2048 * 100 / 70))0 ]"
check "usage back at or below 70%" pool_ok $vg-pool-tpool
check_eq "the pool is in write mode at the end" "rw" "$(dmsetup status $vg-pool-tpool | awk '{ print $8 }')"
check "extensions logged" grep -q "data .* > 70%, extending by" /tmp/t.mon
check_eq "no error logged" "" "$(grep '^<3>' /tmp/t.mon)"
psize=$(size_s $vg/pool)
check_eq "low water mark follows the size" "128 $((${psize:-0} / 128 * 30 / 100))" "$(lwm $vg-pool-tpool)"
check "real vgchange -an, -ay (thin_check) and vgck" sh -c "vgchange -an $vg && vgchange -ay $vg && vgck $vg"
check "orion-lvm lvremove th, pool" sh -c "orion-lvm lvremove $vg/th && orion-lvm lvremove $vg/pool"

# (b) The same pool filled 2 MiB at a time (64 MiB), each step waiting for the usage to be
# back at the threshold: our monitor, then real dmeventd.
fill_steps() {
	i=0
	while [ $i -lt 32 ]; do
		dd if=/dev/zero of=/dev/$vg/th bs=1M count=2 seek=$((i * 2)) conv=fsync 2>/dev/null || return 1
		settle pool_ok $vg-pool-tpool || return 1
		i=$((i + 1))
	done
}
: >/tmp/t.mon
check "orion-lvm pool and thin volume" sh -c \
	"orion-lvm lvcreate --type thin-pool -L 36M -n pool $vg && orion-lvm lvcreate -V 256M -T $vg/pool -n th"
ours_lwm=$(lwm $vg-pool-tpool)
start_monitor
check "64 MiB in 2 MiB steps under orion-lvm monitor" fill_steps
stop_monitor
ours_size=$(size_s $vg/pool)
ours_meta=$(lvs -a --noheadings --units s --nosuffix -o lv_size $vg/pool_tmeta | tr -d ' ')
note "orion-lvm monitor: pool $ours_size sectors, metadata $ours_meta" "$(grep 'extending' /tmp/t.mon)"
check "orion-lvm lvremove" sh -c "orion-lvm lvremove $vg/th && orion-lvm lvremove $vg/pool"
mon='--config activation{monitoring=1}'
check "real lvcreate of the pool and thin volume, monitored" sh -c \
	"lvcreate $mon -y --type thin-pool -L 36M -n pool $vg && lvcreate $mon -V 256M -T $vg/pool -n th"
check "dmeventd runs" sh -c "[ -f /run/dmeventd.pid ] && kill -0 \$(cat /run/dmeventd.pid)"
check_eq "real LVM2 loads the same low water mark" "$(lwm $vg-pool-tpool)" "$ours_lwm"
check "64 MiB in 2 MiB steps under real dmeventd" fill_steps
real_size=$(size_s $vg/pool)
real_meta=$(lvs -a --noheadings --units s --nosuffix -o lv_size $vg/pool_tmeta | tr -d ' ')
note "dmeventd: pool $real_size sectors, metadata $real_meta"
check_eq "final pool size equal to dmeventd's" "$real_size" "$ours_size"
check_eq "final metadata size equal to dmeventd's" "$real_meta" "$ours_meta"
check "real lvremove (unmonitors)" sh -c "lvremove $mon -y $vg/th && lvremove $mon -y $vg/pool"
kill "$(cat /run/dmeventd.pid)" 2>/dev/null

# (c) A snapshot of 8 MiB, 12 MiB of the origin rewritten 1 MiB at a time: under our
# monitor, then under real dmeventd (same lvm.conf); the sizes reached must be equal.
rewrite_steps() {
	i=0
	while [ $i -lt 12 ]; do
		dd if=/dev/urandom of=/dev/$vg/origin bs=1M count=1 seek=$i conv=fsync 2>/dev/null || return 1
		settle snap_ok $vg-snap || return 1
		i=$((i + 1))
	done
}
# snap_case LABEL: checks what the rewrite left (the snapshot grew, is valid, holds the old
# content, vgck passes) and removes both volumes with orion-lvm.
snap_case() {
	check "$1: the snapshot grew" sh -c "[ $(size_s $vg/snap)0 -gt 163840 ]"
	check "$1: the snapshot is valid" sh -c "dmsetup status $vg-snap | grep -qv Invalid"
	check "$1: the snapshot keeps the old content" cmp -n $((16 << 20)) /dev/$vg/snap /tmp/t.orig
	check "$1: real vgck" vgck $vg
	check "$1: orion-lvm lvremove snap, origin" sh -c \
		"orion-lvm $lvo lvremove $vg/snap && orion-lvm $lvo lvremove $vg/origin"
}
lvo=
: >/tmp/t.mon
check "orion-lvm origin (64 MiB)" orion-lvm lvcreate -L 64M -n origin $vg
fill_random /dev/$vg/origin $((16 << 20)) /tmp/t.orig
check "orion-lvm snapshot of 8 MiB" orion-lvm lvcreate -s -L 8M -n snap $vg/origin
start_monitor
check "12 MiB rewritten under orion-lvm monitor" rewrite_steps
stop_monitor
note "$(cat /tmp/t.mon)"
ours_snap=$(size_s $vg/snap)
check "snapshot extensions logged" grep -q "snapshot .* > 70%, extending by 20%" /tmp/t.mon
snap_case "orion-lvm monitor"
check "real lvcreate of the origin and a monitored snapshot of 8 MiB" sh -c \
	"lvcreate -y -L 64M -n origin $vg && dd if=/tmp/t.orig of=/dev/$vg/origin bs=1M conv=fsync 2>/dev/null && lvcreate $mon -y -s -L 8M -n snap $vg/origin"
check "dmeventd runs" sh -c "[ -f /run/dmeventd.pid ] && kill -0 \$(cat /run/dmeventd.pid)"
check "12 MiB rewritten under real dmeventd" rewrite_steps
real_snap=$(size_s $vg/snap)
note "snapshot: orion-lvm monitor $ours_snap sectors, dmeventd $real_snap"
check_eq "final snapshot size equal to dmeventd's" "$real_snap" "$ours_snap"
check "real lvchange --monitor n" lvchange --monitor n $vg/snap
snap_case "dmeventd"
kill "$(cat /run/dmeventd.pid)" 2>/dev/null

# (d), (e) Mirrors: image 1 killed (its linear device reloaded with an error target) while
# fio writes and verifies.
# in_sync DM_NAME: every region of the mirror is in sync (from its status, so that it
# reads orion-mirror's too).
in_sync() {
	dmsetup status "$1" | awk '$3 ~ /mirror$/ { split($(5 + $4), r, "/"); ok = r[2] > 0 && r[1] == r[2] }
		END { exit !ok }'
}
wait_sync() {
	n=0
	while [ $n -lt 600 ]; do
		in_sync "$(echo "$1" | sed 's/-/--/g; s,/,-,')" && return 0
		sleep 0.1
		n=$((n + 1))
	done
	return 1
}
pv_of() { lvs -a --noheadings -o devices "$1" | tr -d ' ' | sed 's/(.*//'; }
# wait_log PATTERN: waits up to 60 s for the monitor to log PATTERN.
wait_log() {
	n=0
	while [ $n -lt 600 ]; do
		grep -q "$1" /tmp/t.mon && return 0
		sleep 0.1
		n=$((n + 1))
	done
	echo "not logged: $1"
	return 1
}
# kill_under_fio LV DEV WHAT LOOPS: fio writes and verifies the first 16 MiB of LV (LOOPS
# times) while DEV (one of LV's devices) is replaced by an error target; a write of our own
# past fio's range follows, which dm-raid1 holds until the repair's reload requeues it. Both
# must complete, and the monitor must log the repair and the failure of WHAT.
kill_under_fio() {
	name=${1#*/}
	dev=$2
	fio --name=m --filename=/dev/$1 --size=16M --rw=randwrite --bs=4k --direct=1 \
		--ioengine=psync --verify=crc32c --verify_fatal=1 --loops=$4 --output=/tmp/t.fio >/dev/null 2>&1 &
	fio_pid=$!
	sleep 1
	check "$name: fio is running when the $3 dies" kill -0 $fio_pid
	dev_table=$(dmsetup table $dev)
	dm_reload $dev "0 $(sectors /dev/mapper/$dev) error"
	head -c $((1 << 20)) /dev/urandom >/tmp/t.after
	if timeout 120 dd if=/tmp/t.after of=/dev/$1 bs=64k seek=320 conv=fsync 2>/dev/null; then
		tap_ok "$name: a write after the failure completes"
	else
		tap_not_ok "$name: a write after the failure completes" "not within 120 s"
		# No repair: give the device back and requeue what the mirror holds, so fio ends.
		dm_reload $dev "$dev_table"
		lv_dev=$(echo "$1" | sed 's/-/--/g; s,/,-,')
		dmsetup suspend --noflush $lv_dev && dmsetup resume $lv_dev
	fi
	wait $fio_pid
	rc=$?
	[ $rc -eq 0 ] || cat /tmp/t.fio
	check_eq "$name: fio verify passes across the failure and the repair" 0 $rc
	check "$name: repair logged" wait_log "repaired"
	check "$name: the failure of the $3 logged" grep -q "$3 (D) failed" /tmp/t.mon
	stop_monitor
	note "$(cat /tmp/t.mon)"
	check "$name: the write after the failure reads back" same_region /dev/$1 $((20 << 11)) 2048 /tmp/t.after
	check_eq "$name: the dead device (error target) is gone" "" "$(dmsetup table | grep ' error')"
}
# mirror_case NAME [MONITOR OPTIONS]: image 1 of a new mirror dies under fio.
mirror_case() {
	name=$1
	shift
	: >/tmp/t.mon
	check "orion-lvm mirror $name (24 MiB)" orion-lvm $lvo lvcreate --type mirror -m1 -L 24M -n $name $vg
	check "$name in sync" wait_sync $vg/$name
	dead_pv=$(pv_of $vg/${name}_mimage_1)
	start_monitor "$@"
	kill_under_fio $vg/$name $vg-${name}_mimage_1 "image 1" 6
	check_eq "$name: no error but the failure" "" "$(grep '^<3>' /tmp/t.mon | grep -v 'failed; repairing')"
	check "$name: real vgck passes" vgck $vg
}

mirror_case mira
check_eq "allocate: still a mirror" mirror "$(lvs --noheadings -o segtype $vg/mira | tr -d ' ')"
check "allocate: the new image resynchronises" wait_sync $vg/mira
images=$(lvs -a --noheadings -o lv_name $vg | tr -d ' []' | grep '^mira_mimage' | sort | tr '\n' ' ')
# As LVM2: linear first, then back to two images under the usual names.
check_eq "allocate: images 0 and 1" "mira_mimage_0 mira_mimage_1 " "$images"
check "allocate: no image on the dead image's PV ($dead_pv)" sh -c \
	"[ -n '$dead_pv' ] && ! lvs -a --noheadings -o devices $vg | grep -q '$dead_pv'"
check "allocate: both images hold the same data" \
	cmp -n $((24 << 20)) /dev/mapper/$vg-mira_mimage_0 /dev/mapper/$vg-mira_mimage_1
check "real vgchange -an, -ay of the repaired mirror" sh -c "vgchange -an $vg && vgchange -ay $vg"
check "orion-lvm lvremove mira" orion-lvm lvremove $vg/mira

mirror_case mirr --config 'activation { mirror_image_fault_policy = "remove" }'
check_eq "remove: now linear" linear "$(lvs --noheadings -o segtype $vg/mirr | tr -d ' ')"
check_eq "remove: no image left" "" "$(lvs -a --noheadings -o lv_name $vg | grep mirr_)"
check "orion-lvm lvremove mirr" orion-lvm lvremove $vg/mirr

# (d) with a disk log killed while fio writes: the log is replaced per
# mirror_log_fault_policy (allocate) on a PV the log did not use, the images stay.
: >/tmp/t.mon
check "orion-lvm mirror with a disk log (24 MiB)" orion-lvm lvcreate --type mirror -m1 --mirrorlog disk -L 24M -n mirl $vg
check "mirl in sync" wait_sync $vg/mirl
log_pv=$(pv_of $vg/mirl_mlog)
start_monitor
kill_under_fio $vg/mirl $vg-mirl_mlog log 4
check_eq "mirl: still a mirror of two images" "mirror 2" \
	"$(lvs --noheadings -o segtype,stripes $vg/mirl | awk '{ print $1, $2 }')"
new_log_pv=$(pv_of $vg/mirl_mlog)
check "mirl: a new disk log on another PV ($log_pv -> $new_log_pv)" sh -c \
	"[ -n '$new_log_pv' ] && [ '$new_log_pv' != '$log_pv' ]"
check "mirl: the log is alive in the status" sh -c \
	"dmsetup status $vg-mirl | awk '{ print \$NF }' | grep -qx A"
check "mirl: real vgck passes" vgck $vg
check "orion-lvm lvremove mirl" orion-lvm lvremove $vg/mirl

# (a) on orion_dm's thin-pool target.
: >/tmp/t.mon
load_orion
o='--target-prefix orion-'
check "orion-lvm pool on orion-thin-pool" sh -c \
	"orion-lvm $o lvcreate --type thin-pool -L 36M -n opool $vg && orion-lvm $o lvcreate -V 256M -T $vg/opool -n oth"
check_eq "orion-thin-pool loaded with the low water mark" "orion-thin-pool 172" \
	"$(dmsetup table $vg-opool-tpool | awk '{ print $3, $7 }')"
start_monitor $o
fio --name=fill --filename=/dev/$vg/oth --size=64M --rw=write --bs=256k --direct=1 \
	--ioengine=psync --verify=crc32c --verify_fatal=1 --output=/tmp/t.fio >/dev/null 2>&1
rc=$?
[ $rc -eq 0 ] || cat /tmp/t.fio
check_eq "orion-thin-pool: fio (64 MiB) sees no error while the pool grows" 0 $rc
settle pool_ok $vg-opool-tpool >/dev/null
stop_monitor
note "$(cat /tmp/t.mon)"
check "orion-thin-pool: usage back at or below 70%" pool_ok $vg-opool-tpool
check_eq "orion-thin-pool: no error logged" "" "$(grep '^<3>' /tmp/t.mon)"

# (f) Mirror repair (allocate) on orion_dm's mirror target.
lvo=$o
mirror_case omir $o
check_eq "orion-mirror: the repaired mirror is loaded on orion-mirror" orion-mirror \
	"$(dmsetup table $vg-omir | awk '{ print $3 }')"
check "orion-mirror: the new image resynchronises" wait_sync $vg/omir
check "orion-mirror: both images hold the same data" \
	cmp -n $((24 << 20)) /dev/mapper/$vg-omir_mimage_0 /dev/mapper/$vg-omir_mimage_1
check "orion-lvm lvremove omir" orion-lvm $o lvremove $vg/omir

# (g) Snapshot autoextension on orion_dm's snapshot target.
: >/tmp/t.mon
check "orion-lvm origin and snapshot of 8 MiB on orion-snapshot" sh -c \
	"orion-lvm $o lvcreate -L 64M -n origin $vg && dd if=/tmp/t.orig of=/dev/$vg/origin bs=1M conv=fsync 2>/dev/null && orion-lvm $o lvcreate -s -L 8M -n snap $vg/origin"
check_eq "loaded on orion-snapshot" orion-snapshot "$(dmsetup table $vg-snap | awk '{ print $3 }')"
start_monitor $o
check "orion-snapshot: 12 MiB rewritten under orion-lvm monitor" rewrite_steps
stop_monitor
note "$(cat /tmp/t.mon)"
check_eq "orion-snapshot: final size equal to dmeventd's on C" "$real_snap" "$(size_s $vg/snap)"
snap_case "orion-snapshot"
check "orion-lvm vgremove -f" orion-lvm $o vgremove -f $vg
