# Drop-in for dm-mirror: C's module not loaded (it cannot load beside ours), orion_dm
# without a prefix registers mirror, and real LVM2 (2.03.16) uses it: lvcreate --type
# mirror -m1 with core and disk logs (resync, fio verify, legs equal, reactivation from the
# disk log), lvconvert adding and removing a leg, pvmove under fio verify; then orion-lvm's
# own mirror and pvmove on ours.

ramdisks 3 96
rmmod dm_mirror 2>/dev/null
load_orion ""
vg=vgmd
wait_sync() {
	i=0
	while [ $i -lt 600 ]; do
		[ "$(lvs --noheadings -o copy_percent "$1" | tr -d ' ')" = "100.00" ] && return 0
		sleep 0.1
		i=$((i + 1))
	done
	lvs -a "$1"
	return 1
}
legs_equal() {
	drop_caches
	n=$(($(sectors /dev/mapper/$vg-$1_mimage_0) * 512))
	i=1
	while [ -e /dev/mapper/$vg-$1_mimage_$i ]; do
		cmp -n $n /dev/mapper/$vg-$1_mimage_0 /dev/mapper/$vg-$1_mimage_$i || return 1
		i=$((i + 1))
	done
}
dm_link() { ln -sf "../mapper/$vg-$1" "/dev/$vg/$1" 2>/dev/null; }

check "orion_dm registers mirror under its own name" sh -c "dmsetup targets | grep -q '^mirror '"
check_fails "C's dm-mirror cannot load beside it (the name is taken)" modprobe dm-mirror
check "real pvcreate/vgcreate" sh -c "pvcreate -y -ff /dev/ram0 /dev/ram1 /dev/ram2 >/dev/null && vgcreate $vg /dev/ram0 /dev/ram1 /dev/ram2 >/dev/null"

check "real lvcreate --type mirror -m1 --mirrorlog core" \
	lvcreate -y --type mirror -m1 --mirrorlog core -L 24M -n mc $vg
check_eq "its table is ours: mirror core" "mirror core" "$(dmsetup table $vg-mc | cut -d' ' -f3,4)"
check "real LVM2 sees the resync finish (copy_percent 100)" wait_sync $vg/mc
check "fio verify through the LVM mirror" fio_verify /dev/$vg/mc --rw=randwrite --bs=16k \
	--size=20M --iodepth=16 --ioengine=libaio
check "both images hold the same data" legs_equal mc

check "real lvcreate --type mirror -m1 --mirrorlog disk" \
	lvcreate -y --type mirror -m1 --mirrorlog disk -L 24M -n md $vg
check_eq "its table is ours: mirror disk" "mirror disk" "$(dmsetup table $vg-md | cut -d' ' -f3,4)"
check "real LVM2 sees the disk-log mirror in sync" wait_sync $vg/md
fill_random /dev/$vg/md $((8 << 20)) /tmp/t.md
check "real vgchange -an, then -ay" sh -c "vgchange -an $vg >/dev/null && vgchange -ay $vg >/dev/null"
check "reactivated from its disk log: in sync at once" sh -c \
	"dmsetup status $vg-md | awk '{ split(\$7, a, \"/\"); exit !(a[1] == a[2]) }'"
check "the disk-log mirror reads its data back" same_bytes /dev/$vg/md /tmp/t.md $((8 << 20))
check "both images hold the same data (disk log)" legs_equal md

check "real lvconvert -m2 (a third leg, resynchronised)" lvconvert -y -m2 $vg/mc
check "the third leg resyncs" wait_sync $vg/mc
check_eq "three legs in the table" 3 "$(dmsetup table $vg-mc | awk '{ print $7 }')"
check "the three images hold the same data" legs_equal mc
check "real lvconvert -m0 (back to linear)" lvconvert -y -m0 $vg/mc
check_eq "mc is linear again" linear "$(dmsetup table $vg-mc | cut -d' ' -f3)"
check "real lvremove of both" lvremove -y $vg/mc $vg/md

# pvmove moves extents through a temporary mirror.
check "real lvcreate of a linear LV on ram0" lvcreate -y -L 16M -n lin $vg /dev/ram0
fio --name=move --filename=/dev/$vg/lin --size=16M --rw=randwrite --bs=4k --ioengine=psync \
	--verify=crc32c --verify_fatal=1 --loops=3 --output=/tmp/t.fio >/dev/null 2>&1 &
fio_pid=$!
check "real pvmove /dev/ram0 /dev/ram2 while fio writes" pvmove -i 0 /dev/ram0 /dev/ram2
wait $fio_pid
fio_rc=$?
[ $fio_rc -eq 0 ] || cat /tmp/t.fio
check_eq "fio verify passes across the move" 0 $fio_rc
check_eq "lin now on ram2" "/dev/ram2" "$(lvs --noheadings -o devices $vg/lin | tr -d ' ' | sed 's/(.*//')"
check "real vgck passes" vgck $vg

# orion-lvm's mirror and pvmove on ours.
check "orion-lvm lvcreate --type mirror -m1 --mirrorlog core" \
	orion-lvm lvcreate --type mirror -m1 --mirrorlog core -L 16M -n om $vg
check "orion-lvm's mirror resyncs" wait_sync $vg/om
check "fio verify through orion-lvm's mirror" fio_verify /dev/$vg/om --rw=randwrite --bs=4k \
	--size=8M --iodepth=8 --ioengine=libaio
check "its images hold the same data" legs_equal om
check "orion-lvm pvmove /dev/ram2 /dev/ram0" orion-lvm pvmove /dev/ram2 /dev/ram0
check_eq "lin back on ram0" "/dev/ram0" "$(lvs --noheadings -o devices $vg/lin | tr -d ' ' | sed 's/(.*//')"
check "real vgck passes" vgck $vg
check "real lvremove and vgremove" sh -c "lvremove -y $vg >/dev/null && vgremove -y $vg >/dev/null"
check_fails "C's dm-mirror module was never loaded" grep -q '^dm_mirror ' /proc/modules
unload_orion
