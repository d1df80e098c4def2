# Drop-in for dm-snapshot: C's module not loaded (it cannot load beside ours), orion_dm
# without a prefix registers snapshot-origin, snapshot and snapshot-merge, and real LVM2
# (2.03.16) uses them: lvcreate -s, writes to origin and snapshot, reactivation from the COW
# device, lvconvert --merge of an active origin and at the next activation, lvremove; then
# orion-lvm's own snapshot commands on ours.

ramdisks 2 96
rmmod dm_snapshot 2>/dev/null
load_orion ""
vg=vgsnap
note() { printf '%s\n' "$@" | sed 's/^/# /'; }
gone() {
	i=0
	while [ $i -lt 600 ]; do
		lvs -a --noheadings -o lv_name $vg | grep -qw "$1" || return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}
check "orion_dm registers snapshot, snapshot-origin and snapshot-merge under their own names" \
	sh -c "dmsetup targets | grep -q '^snapshot ' && dmsetup targets | grep -q '^snapshot-origin ' && dmsetup targets | grep -q '^snapshot-merge '"
check_fails "C's dm-snapshot cannot load beside it (the names are taken)" modprobe dm-snapshot
check "real pvcreate/vgcreate" sh -c "pvcreate -y -ff /dev/ram0 /dev/ram1 >/dev/null && vgcreate $vg /dev/ram0 /dev/ram1 >/dev/null"
check "real lvcreate of the origin" lvcreate -y -L 40M -n lin $vg
linear_table=$(dmsetup table $vg-lin)
fill_random /dev/$vg/lin $((40 << 20)) /tmp/t.A
check "real lvcreate -s -L 16M" lvcreate -y -s -L 16M -n snap $vg/lin
check_eq "the origin's table is snapshot-origin" snapshot-origin "$(dmsetup table $vg-lin | cut -d' ' -f3)"
check_eq "the snapshot's table is snapshot P 8" "snapshot P 8" "$(dmsetup table $vg-snap | cut -d' ' -f3,6,7)"
head -c $((8 << 20)) /dev/urandom >/tmp/t.B
head -c $((1 << 20)) /dev/urandom >/tmp/t.C
dd if=/tmp/t.B of=/dev/$vg/lin bs=64k oflag=direct 2>/dev/null
dd if=/tmp/t.C of=/dev/$vg/snap bs=64k seek=320 oflag=direct 2>/dev/null
check "the origin has the new data" cmp -n $((8 << 20)) /dev/$vg/lin /tmp/t.B
check "the snapshot keeps the old data where the origin was written" cmp -n $((8 << 20)) /dev/$vg/snap /tmp/t.A
check "the snapshot has its own write" same_region /dev/$vg/snap $((20 << 11)) 2048 /tmp/t.C
cp /tmp/t.A /tmp/t.S
dd if=/tmp/t.C of=/tmp/t.S bs=64k seek=320 conv=notrunc 2>/dev/null
check "the whole snapshot as expected" cmp -n $((40 << 20)) /dev/$vg/snap /tmp/t.S
check_eq "lvs snap_percent as the status says" \
	"$(dmsetup status $vg-snap | awk '{ split($4, a, "/"); printf "%.2f", 100 * a[1] / a[2] }')" \
	"$(lvs --noheadings -o snap_percent $vg/snap | tr -d ' ')"
check "real vgchange -an, then -ay (the snapshot reloaded from its COW device)" \
	sh -c "vgchange -an $vg >/dev/null && vgchange -ay $vg >/dev/null"
check "after reactivation: the snapshot as before" cmp -n $((40 << 20)) /dev/$vg/snap /tmp/t.S
check "after reactivation: the origin as before" cmp -n $((8 << 20)) /dev/$vg/lin /tmp/t.B
check "fio verify on the origin with a snapshot" fio_verify /dev/$vg/lin --rw=randwrite \
	--bs=4k --offset=24M --size=4M --iodepth=16 --ioengine=libaio
dd if=/dev/$vg/snap of=/tmp/t.S bs=1M 2>/dev/null
check "real lvconvert --merge of the active origin" lvconvert -y --merge $vg/snap
check "real LVM2's polling finishes the merge" gone snap
check "the origin holds the snapshot's data" cmp -n $((40 << 20)) /dev/$vg/lin /tmp/t.S
check_eq "the origin is back on its own table" "$linear_table" "$(dmsetup table $vg-lin)"

# A merge at the next activation.
check "real lvcreate -s snap2" lvcreate -y -s -L 16M -n snap2 $vg/lin
dd if=/tmp/t.B of=/dev/$vg/lin bs=64k seek=100 oflag=direct 2>/dev/null
dd if=/tmp/t.C of=/dev/$vg/snap2 bs=4k seek=7 oflag=direct 2>/dev/null
dd if=/dev/$vg/snap2 of=/tmp/t.S bs=1M 2>/dev/null
check "real lvchange -an" lvchange -an $vg/lin
check "real lvconvert --merge (marks the inactive origin)" lvconvert -y --merge $vg/snap2
check "real vgchange -ay starts the merge (snapshot-merge table)" vgchange -ay $vg
check "real LVM2's polling finishes it" gone snap2
check "the origin holds snap2's data" cmp -n $((40 << 20)) /dev/$vg/lin /tmp/t.S

# lvremove of a snapshot with exceptions.
check "real lvcreate -s snap3" lvcreate -y -s -L 8M -n snap3 $vg/lin
dd if=/tmp/t.C of=/dev/$vg/lin bs=64k seek=3 oflag=direct 2>/dev/null
check "real lvremove of the snapshot" lvremove -y $vg/snap3
check_eq "the origin is back on its own table" "$linear_table" "$(dmsetup table $vg-lin)"
check "real vgck passes" vgck $vg

# orion-lvm's snapshot commands on ours.
dd if=/dev/$vg/lin of=/tmp/t.S bs=1M 2>/dev/null
check "orion-lvm lvcreate -s" orion-lvm lvcreate -s -L 16M -n osnap $vg/lin
check_eq "orion-lvm's snapshot table: snapshot P 8" "snapshot P 8" "$(dmsetup table $vg-osnap | cut -d' ' -f3,6,7)"
dd if=/tmp/t.B of=/dev/$vg/lin bs=64k oflag=direct 2>/dev/null
check "orion-lvm's snapshot keeps the old data" cmp -n $((40 << 20)) /dev/$vg/osnap /tmp/t.S
check "orion-lvm lvconvert --merge" orion-lvm lvconvert --merge $vg/osnap
check "the origin holds the snapshot's data again" cmp -n $((40 << 20)) /dev/$vg/lin /tmp/t.S
check "real vgck passes" vgck $vg
check "real lvremove and vgremove" sh -c "lvremove -y $vg >/dev/null && vgremove -y $vg >/dev/null"
check_fails "C's dm-snapshot module was never loaded" grep -q '^dm_snapshot ' /proc/modules
unload_orion
