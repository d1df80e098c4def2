# orion-lvm thin pools, thin volumes and thin snapshots against real LVM2 (2.03.16) in
# the guest, over the kernel's C thin-pool target: the same layout (spare, metadata and
# data LVs on the same extents), the same device stack, names, DM UUIDs and tables, the
# same pool messages and transaction ids; thin volumes and snapshots made by one tool are
# used and removed by the other; real LVM2 runs thin_check on every pool activation.

ramdisks 4 96
modprobe dm-thin-pool
vg=vgthin
check "orion-lvm vgcreate over three ramdisks" orion-lvm vgcreate $vg /dev/ram0 /dev/ram1 /dev/ram2

layout() {
	lvs -a --noheadings --units s -o lv_name,lv_attr,lv_size,seg_type,devices,chunk_size,transaction_id,zero,discards \
		--separator ' ' "$1" | sed 's/^ *//' | sort
}
tid_kernel() { dmsetup status "$1" | awk '{ print $4 }'; }
tid_lvm() { lvs --noheadings -o transaction_id "$1" | tr -d ' '; }
real_attr() { lvs --noheadings -o lv_attr "$1" | tr -d ' '; }
ours_attr() { orion-lvm lvs --noheadings -o lv_attr "$1" | tr -d ' '; }

# The reference: real LVM2's pool in this VG, then removed; ours in the same free space.
check "real lvcreate --type thin-pool -L 64M" lvcreate -y --type thin-pool -L 64M -n pool $vg
real_layout=$(layout $vg)
real_tables=$(dm_tables_by_name)
real_info=$(dm_info_by_lv $vg)
note() { printf '%s\n' "$@" | sed 's/^/# /'; }
note "real LVM2's pool:" "$real_layout" "$real_tables" "$real_info"
check "real lvremove of the pool" lvremove -y $vg/pool
check_eq "real LVM2 removed the spare with its last pool" "" "$(lvs -a --noheadings -o lv_name $vg)"
check "orion-lvm lvcreate --type thin-pool -L 64M" orion-lvm lvcreate --type thin-pool -L 64M -n pool $vg
check_eq "layout (spare, metadata, data, chunk, zeroing, discards) equal to real LVM2's" \
	"$real_layout" "$(layout $vg)"
check_eq "device stack and tables equal to real LVM2's" "$real_tables" "$(dm_tables_by_name)"
check_eq "device names, DM UUID suffixes and attributes equal" "$real_info" "$(dm_info_by_lv $vg)"
check_eq "new pool at transaction 0 in the kernel" 0 "$(tid_kernel $vg-pool)"
check_eq "lv_attr of the pool equals real lvs'" "$(real_attr $vg/pool)" "$(ours_attr $vg/pool)"

# Thin volumes and snapshots by orion-lvm, used by real LVM2.
check "orion-lvm lvcreate -V 100M -T $vg/pool -n th1" orion-lvm lvcreate -V 100M -T $vg/pool -n th1
check_eq "kernel transaction id moved with the metadata's" "$(tid_lvm $vg/pool)" "$(tid_kernel $vg-pool-tpool)"
check_eq "pool now layered: -tpool under a read-only public device" \
	"linear" "$(dmsetup table $vg-pool | awk '{ print $3 }')"
check "real lvs sees th1 as a thin volume of pool" \
	sh -c "lvs --noheadings -o lv_name,segtype,pool_lv $vg/th1 | grep -q 'th1 *thin *pool'"
fill_random /dev/$vg/th1 $((3 << 20)) /tmp/t.th1-before
check "orion-lvm thin snapshot (no size)" orion-lvm lvcreate -s -n ts1 $vg/th1
check_eq "the snapshot is skipped on activation, as real LVM2 marks it" "Vwi---tz-k" "$(real_attr $vg/ts1)"
check_eq "lv_attr of the thin snapshot equals real lvs'" "$(real_attr $vg/ts1)" "$(ours_attr $vg/ts1)"
head -c $((3 << 20)) /dev/urandom >/tmp/t.th1-after
dd if=/tmp/t.th1-after of=/dev/$vg/th1 bs=1M conv=fsync 2>/dev/null
check "real lvchange -ay -K activates our snapshot" lvchange -ay -K $vg/ts1
check "the snapshot holds the data from before" cmp -n $((3 << 20)) /dev/$vg/ts1 /tmp/t.th1-before
check "the origin has the new data" cmp -n $((3 << 20)) /dev/$vg/th1 /tmp/t.th1-after
check "real lvchange -an of the snapshot" lvchange -an $vg/ts1

# Activation stacks: real vgchange -ay (with thin_check) against ours.
check "orion-lvm vgchange -an" orion-lvm vgchange -an $vg
check_eq "nothing left active" "" "$(dmsetup ls | grep "^$vg-")"
check "real vgchange -ay (thin_check of our pool's metadata passes)" vgchange -ay $vg
real_tables=$(dm_tables_by_name)
real_info=$(dm_info_by_lv $vg)
pct_fields="--noheadings --separator , -o lv_name,data_percent,metadata_percent"
real_pct=$(lvs $pct_fields $vg | sed 's/^ *//')
note "real vgchange -ay:" "$real_tables" "$real_info" "$real_pct"
check "real vgchange -an" vgchange -an $vg
check "orion-lvm vgchange -ay (checks the metadata in process)" orion-lvm vgchange -ay $vg
check_eq "thin stack and tables equal to real vgchange -ay's" "$real_tables" "$(dm_tables_by_name)"
check_eq "names, DM UUID suffixes and attributes equal" "$real_info" "$(dm_info_by_lv $vg)"
check "data reads back through our activation" cmp -n $((3 << 20)) /dev/$vg/th1 /tmp/t.th1-after
for lv in pool th1 ts1; do
	check_eq "lv_attr of $lv equals real lvs'" "$(real_attr $vg/$lv)" "$(ours_attr $vg/$lv)"
done
check_eq "Data% and Meta% equal to real lvs'" "$real_pct" "$(orion-lvm lvs $pct_fields $vg | sed 's/^ *//')"

# Real LVM2's thin volume in our pool, removed by orion-lvm, and the other way round.
check "real lvcreate -V 40M in our pool" lvcreate -V 40M -T $vg/pool -n rth
fill_random /dev/$vg/rth $((1 << 20)) /tmp/t.rth
check "orion-lvm lvremove of real LVM2's thin volume" orion-lvm lvremove $vg/rth
check "real lvs no longer lists it" sh -c "! lvs $vg/rth 2>/dev/null"
check_eq "transaction ids agree after the delete" "$(tid_lvm $vg/pool)" "$(tid_kernel $vg-pool-tpool)"
check "real lvremove of our thin snapshot" lvremove -y $vg/ts1
check_eq "transaction ids agree" "$(tid_lvm $vg/pool)" "$(tid_kernel $vg-pool-tpool)"
check "thin_dump of the live pool lists one thin device" \
	sh -c "dmsetup message $vg-pool-tpool 0 reserve_metadata_snap && thin_dump -m /dev/mapper/$vg-pool_tmeta | grep -c '<device ' | grep -qx 1; rc=\$?; dmsetup message $vg-pool-tpool 0 release_metadata_snap; exit \$rc"

# Growing the pool online and a thin volume.
check "orion-lvm lvextend -L +24M of the pool, thin volume open" sh -c "exec 3</dev/$vg/th1; orion-lvm lvextend -L +24M $vg/pool"
check_eq "thin-pool table grown to 88 MiB" 180224 "$(dmsetup table $vg-pool-tpool | awk '{ print $2 }')"
check_eq "the kernel sees 1408 data blocks" "1408" \
	"$(dmsetup status $vg-pool-tpool | awk '{ split($6, a, "/"); print a[2] }')"
check_eq "real lvs agrees on the size" 180224 \
	"$(lvs --noheadings --units s --nosuffix -o lv_size $vg/pool | tr -d ' ')"
check "orion-lvm lvextend of the thin volume" orion-lvm lvextend -L +28M $vg/th1
check_eq "thin volume now 128 MiB" 262144 "$(sectors /dev/$vg/th1)"
check "data intact after both" cmp -n $((3 << 20)) /dev/$vg/th1 /tmp/t.th1-after
check "real vgchange -an then -ay: thin_check passes, transaction ids agree" sh -c "vgchange -an $vg && vgchange -ay $vg"
check "data reads back through real LVM2" cmp -n $((3 << 20)) /dev/$vg/th1 /tmp/t.th1-after
check "real vgck passes" vgck $vg

# pvmove of the live pool's metadata (and whatever else is on that PV) while a thin volume
# is open.
check "orion-lvm pvmove /dev/ram2 under the live pool" sh -c "exec 3</dev/$vg/th1; orion-lvm pvmove /dev/ram2"
check_eq "nothing left on /dev/ram2" 0 "$(pvs --noheadings -o pv_used --units s --nosuffix /dev/ram2 | tr -d ' ')"
check "thin data intact" cmp -n $((3 << 20)) /dev/$vg/th1 /tmp/t.th1-after
fill_random /dev/$vg/th1 $((2 << 20)) /tmp/t.th1-moved
check "real vgchange -an, -ay after the move (thin_check of the moved metadata)" \
	sh -c "vgchange -an $vg && vgchange -ay $vg"
check "data written after the move reads back" cmp -n $((2 << 20)) /dev/$vg/th1 /tmp/t.th1-moved
check "real vgck passes" vgck $vg

# Removal: thin volume, then the pool (the spare goes with the last pool).
check_fails "orion-lvm refuses to remove a pool with thin volumes" orion-lvm lvremove $vg/pool
check "orion-lvm lvremove th1" orion-lvm lvremove $vg/th1
check "orion-lvm lvremove pool" orion-lvm lvremove $vg/pool
check_eq "no LV left, spare included" "" "$(lvs -a --noheadings -o lv_name $vg)"
check_eq "no device left" "" "$(dmsetup ls | grep "^$vg-")"

# A pool on a VG of one PV: the metadata goes after the data, as real LVM2 puts it.
check "orion-lvm vgcreate one-PV VG" orion-lvm vgcreate vgone /dev/ram3
check "real pool on one PV" lvcreate -y --type thin-pool -L 40M -n p1 vgone
real_layout=$(layout vgone)
note "real LVM2's pool on one PV:" "$real_layout"
check "real lvremove" lvremove -y vgone/p1
check "orion-lvm pool on one PV" orion-lvm lvcreate --type thin-pool -L 40M -n p1 vgone
check_eq "one-PV layout equal to real LVM2's" "$real_layout" "$(layout vgone)"
check "orion-lvm pool with -Zn --discards ignore -c 256k -an" \
	orion-lvm lvcreate -an --type thin-pool -L 8M -Z n --discards ignore -c 256k -n p2 vgone
check "real vgchange -ay activates both pools" vgchange -ay vgone
check_eq "real LVM2 loads our pool options" "0 16384 thin-pool 512 0 2 skip_block_zeroing ignore_discard" \
	"$(dmsetup table vgone-p2 | sed 's/ [0-9]*:[0-9]* [0-9]*:[0-9]*//; s/ *$//')"
check "orion-lvm vgremove -f of the VG with pools" orion-lvm vgremove -f vgone

# lvconvert --repair of an inactive pool: real LVM2's and ours from the same state (the
# VG metadata restored in between; the repair only reads the old metadata LV) leave the
# same layout: the repaired spare as rp_tmeta, the old metadata as visible rp_meta0, a
# new spare; real thin_check (vgchange -ay) accepts the repaired metadata.
check "orion-lvm vgcreate vgrep" orion-lvm vgcreate vgrep /dev/ram3
check "orion-lvm pool rp with thin volume rt" sh -c \
	"orion-lvm lvcreate --type thin-pool -L 40M -n rp vgrep && orion-lvm lvcreate -V 20M -T vgrep/rp -n rt"
fill_random /dev/vgrep/rt $((2 << 20)) /tmp/t.rt
check_fails "orion-lvm refuses to repair an active pool" orion-lvm lvconvert --repair vgrep/rp
check "orion-lvm vgchange -an vgrep" orion-lvm vgchange -an vgrep
check "orion-lvm vgcfgbackup before the repairs" orion-lvm vgcfgbackup -f /tmp/vgrep.before vgrep
check "real lvconvert --repair" lvconvert -y --repair vgrep/rp
real_layout=$(layout vgrep)
note "real LVM2's repaired pool:" "$real_layout"
check "real vgchange -ay after its repair" vgchange -ay vgrep
check "thin data intact after real LVM2's repair" cmp -n $((2 << 20)) /dev/vgrep/rt /tmp/t.rt
check "real vgchange -an" vgchange -an vgrep
check "orion-lvm vgcfgrestore of the state before" orion-lvm vgcfgrestore -f /tmp/vgrep.before vgrep
check "orion-lvm lvconvert --repair" orion-lvm lvconvert --repair vgrep/rp
check_eq "repaired layout equal to real LVM2's" "$real_layout" "$(layout vgrep)"
check "real vgck passes after our repair" vgck vgrep
check "real vgchange -ay after our repair (thin_check of the repaired metadata)" vgchange -ay vgrep
check "thin data intact after our repair" cmp -n $((2 << 20)) /dev/vgrep/rt /tmp/t.rt
check "orion-lvm vgremove -f vgrep" orion-lvm vgremove -f vgrep
check "orion-lvm vgremove -f" orion-lvm vgremove -f $vg
