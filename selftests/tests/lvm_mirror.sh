# orion-lvm mirrors (core log) and pvmove against real LVM2 (2.03.16) in the guest, over
# the kernel's C mirror target: the same layout, device stack, names, DM UUIDs and tables
# as real lvcreate --type mirror; mirrors made by one tool activated and removed by the
# other; pvmove moves the same extents to the same places as real pvmove, online under
# fio verify, and leaves a VG real LVM2 accepts.

ramdisks 3 96
modprobe dm-mirror
vg=vgmir
check "orion-lvm vgcreate over three ramdisks" orion-lvm vgcreate $vg /dev/ram0 /dev/ram1 /dev/ram2

note() { printf '%s\n' "$@" | sed 's/^/# /'; }
layout() {
	lvs -a --noheadings -o lv_name,lv_attr,lv_size,seg_type,devices,regionsize,seg_pe_ranges \
		--separator ' ' "$1" | sed 's/^ *//' | sort
}
real_attr() { lvs -a --noheadings -o lv_attr "$1" | tr -d ' '; }
ours_attr() { orion-lvm lvs -a --noheadings -o lv_attr "$1" | tr -d ' '; }
wait_sync() {
	i=0
	while [ $i -lt 300 ]; do
		[ "$(orion-lvm lvs --noheadings -o copy_percent "$1" | tr -d ' ')" = "100.00" ] && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# The reference: real LVM2's mirror, then removed; ours in the same free space.
check "real lvcreate --type mirror -m1 --mirrorlog core -L 24M" \
	lvcreate -y --type mirror -m1 --mirrorlog core -L 24M -n mir $vg
real_layout=$(layout $vg)
real_tables=$(dm_tables_by_name)
real_info=$(dm_info_by_lv $vg)
note "real LVM2's mirror:" "$real_layout" "$real_tables" "$real_info"
check "real lvremove of the mirror" lvremove -y $vg/mir
check "orion-lvm lvcreate --type mirror -m1 --mirrorlog core -L 24M" \
	orion-lvm lvcreate --type mirror -m1 --mirrorlog core -L 24M -n mir $vg
check_eq "layout (images, region size, extents) equal to real LVM2's" "$real_layout" "$(layout $vg)"
check_eq "device stack and tables equal to real LVM2's" "$real_tables" "$(dm_tables_by_name)"
check_eq "device names, DM UUIDs and attributes equal" "$real_info" "$(dm_info_by_lv $vg)"
check "the mirror reaches 100% copied (orion-lvm lvs copy_percent)" wait_sync $vg/mir
check_eq "copy percent equal to real lvs'" \
	"$(lvs --noheadings -o copy_percent $vg/mir | tr -d ' ')" \
	"$(orion-lvm lvs --noheadings -o copy_percent $vg/mir | tr -d ' ')"
for lv in mir mir_mimage_0 mir_mimage_1; do
	check_eq "lv_attr of $lv equals real lvs'" "$(real_attr $vg/$lv)" "$(ours_attr $vg/$lv)"
done
fill_random /dev/$vg/mir $((8 << 20)) /tmp/t.mir
check "image 0 holds the data" cmp -n $((8 << 20)) /dev/mapper/$vg-mir_mimage_0 /tmp/t.mir
check "image 1 holds the data" cmp -n $((8 << 20)) /dev/mapper/$vg-mir_mimage_1 /tmp/t.mir
check "real vgchange -an" vgchange -an $vg
check "real vgchange -ay of our mirror" vgchange -ay $vg
check_eq "real activation's tables equal ours" "$real_tables" "$(dm_tables_by_name)"
check "data reads back through real LVM2" cmp -n $((8 << 20)) /dev/$vg/mir /tmp/t.mir
check "orion-lvm lvremove of the active mirror" orion-lvm lvremove $vg/mir
check_eq "images gone with it" "" "$(lvs -a --noheadings -o lv_name $vg)"
check_eq "no device left" "" "$(dmsetup ls | grep "^$vg-")"
check "real lvcreate mirror" lvcreate -y --type mirror -m1 --mirrorlog core -L 8M -n rmir $vg
check "orion-lvm vgchange -an" orion-lvm vgchange -an $vg
check "orion-lvm vgchange -ay of real LVM2's mirror" orion-lvm vgchange -ay $vg
check "orion-lvm removes real LVM2's mirror" orion-lvm lvremove $vg/rmir
check "real vgck passes" vgck $vg

# A disk log: the same comparison.
check "real lvcreate --type mirror -m1 --mirrorlog disk -L 16M" \
	lvcreate -y --type mirror -m1 --mirrorlog disk -L 16M -n dmir $vg
real_layout=$(layout $vg)
real_tables=$(dm_tables_by_name)
real_info=$(dm_info_by_lv $vg)
real_attrs=$(lvs -a --noheadings -o lv_name,lv_attr $vg | awk '{ print $1, $2 }' | sort)
note "real LVM2's disk-log mirror:" "$real_layout" "$real_tables" "$real_attrs"
check "real lvremove" lvremove -y $vg/dmir
check "orion-lvm lvcreate --type mirror -m1 --mirrorlog disk -L 16M" \
	orion-lvm lvcreate --type mirror -m1 --mirrorlog disk -L 16M -n dmir $vg
check_eq "disk-log layout equal to real LVM2's" "$real_layout" "$(layout $vg)"
check_eq "disk-log stack and tables equal" "$real_tables" "$(dm_tables_by_name)"
check_eq "disk-log names and DM UUIDs equal" "$real_info" "$(dm_info_by_lv $vg)"
check "the disk-log mirror syncs" wait_sync $vg/dmir
check_eq "attributes (mirror, images, log) equal to real lvs'" "$real_attrs" \
	"$(orion-lvm lvs -a --noheadings -o lv_name,lv_attr $vg | awk '{ print $1, $2 }' | sort)"
fill_random /dev/$vg/dmir $((4 << 20)) /tmp/t.dmir
check "real vgchange -an, -ay of our disk-log mirror" sh -c "vgchange -an $vg && vgchange -ay $vg"
check "data reads back through real LVM2" cmp -n $((4 << 20)) /dev/$vg/dmir /tmp/t.dmir
check "orion-lvm lvremove of the disk-log mirror" orion-lvm lvremove $vg/dmir
check_eq "images and log gone" "" "$(lvs -a --noheadings -o lv_name $vg)"
check "real vgck passes" vgck $vg

# pvmove: real LVM2's move as the reference, the VG put back with vgcfgrestore, then ours.
check "orion-lvm lvcreate lin (40M, first PV)" orion-lvm lvcreate -L 40M -n lin $vg
check "orion-lvm lvcreate str (2 stripes)" orion-lvm lvcreate -L 16M -i 2 -n str $vg
check "orion-lvm lvcreate spans (two PVs)" orion-lvm lvcreate -L 60M -n span $vg
fill_random /dev/$vg/lin $((40 << 20)) /tmp/t.lin
fill_random /dev/$vg/str $((16 << 20)) /tmp/t.str
note "before the move:" "$(layout $vg)"
check "orion-lvm vgcfgbackup" orion-lvm vgcfgbackup -f /tmp/t.vgbackup $vg
check "real pvmove /dev/ram0" pvmove -i 0 /dev/ram0
real_layout=$(layout $vg)
note "real pvmove:" "$real_layout"
check "orion-lvm vgchange -an" orion-lvm vgchange -an $vg
check "orion-lvm vgcfgrestore puts the VG back" orion-lvm vgcfgrestore -f /tmp/t.vgbackup $vg
check "orion-lvm vgchange -ay" orion-lvm vgchange -ay $vg
check "data still on the source" cmp -n $((40 << 20)) /dev/$vg/lin /tmp/t.lin
fio --name=move --filename=/dev/$vg/lin --size=16M --rw=randwrite --bs=4k --ioengine=psync \
	--verify=crc32c --verify_fatal=1 --loops=3 --output=/tmp/t.fio >/dev/null 2>&1 &
fio_pid=$!
sleep 0.5
check "orion-lvm pvmove /dev/ram0 while fio writes to lin" orion-lvm pvmove /dev/ram0
wait $fio_pid
fio_rc=$?
[ $fio_rc -eq 0 ] || cat /tmp/t.fio
check_eq "fio verify passes across the move" 0 $fio_rc
check_eq "layout equal to real pvmove's" "$real_layout" "$(layout $vg)"
check_eq "no pvmove LV or device left" "" "$(dmsetup ls | grep pvmove; lvs -a --noheadings -o lv_name $vg | grep pvmove)"
check "nothing left on /dev/ram0" sh -c "[ \$(pvs --noheadings -o pv_used --units s --nosuffix /dev/ram0 | tr -d ' ') = 0 ]"
check "striped data intact" cmp -n $((16 << 20)) /dev/$vg/str /tmp/t.str
check "the rest of lin intact" cmp -i $((16 << 20)) -n $((24 << 20)) /dev/$vg/lin /tmp/t.lin
check "real vgck passes" vgck $vg
check "real vgchange -an and -ay after the move" sh -c "vgchange -an $vg && vgchange -ay $vg"
check "data reads back through real LVM2" cmp -n $((16 << 20)) /dev/$vg/str /tmp/t.str
check_fails "pvmove of a PV with nothing on it fails" orion-lvm pvmove /dev/ram0

# A move started in the background by orion-lvm, finished by real LVM2, then by ours.
used() { pvs --noheadings -o pv_used --units s --nosuffix "$1" | tr -d ' '; }
check "orion-lvm pvmove -b -i 600 /dev/ram1 /dev/ram0 (its poller looks after 600 s)" orion-lvm pvmove -b -i 600 /dev/ram1 /dev/ram0
check "real lvs shows our move in progress" sh -c "lvs -a --noheadings -o lv_name $vg | grep -q pvmove0"
check "real pvmove (no arguments) finishes our move" pvmove -i 0
check_eq "nothing left on /dev/ram1" 0 "$(used /dev/ram1)"
check "striped data intact" cmp -n $((16 << 20)) /dev/$vg/str /tmp/t.str
check "lin intact" cmp -i $((16 << 20)) -n $((24 << 20)) /dev/$vg/lin /tmp/t.lin
check "orion-lvm pvmove -b -i 600 /dev/ram0 /dev/ram1" orion-lvm pvmove -b -i 600 /dev/ram0 /dev/ram1
check "orion-lvm pvmove (no arguments) finishes it" orion-lvm pvmove
check_eq "nothing left on /dev/ram0" 0 "$(used /dev/ram0)"
check_eq "no pvmove LV or device left" "" "$(dmsetup ls | grep pvmove; lvs -a --noheadings -o lv_name $vg | grep pvmove)"
check "striped data intact" cmp -n $((16 << 20)) /dev/$vg/str /tmp/t.str
check "lin intact" cmp -i $((16 << 20)) -n $((24 << 20)) /dev/$vg/lin /tmp/t.lin
check "real vgck passes" vgck $vg

# lvconvert --repair of a mirror whose image 1 died (its device reloaded with an error
# target): with the allocate policy a new image goes on the third PV, and the command
# waits for its resync printing LVM2's poller lines (`VG/LV: Converted: N.NN%`).
check "orion-lvm mirror rep (8 MiB)" orion-lvm lvcreate --type mirror -m1 -L 8M -n rep $vg
check "rep in sync" wait_sync $vg/rep
head -c $((8 << 20)) /dev/urandom >/tmp/t.rep
check "8 MiB written to rep" dd if=/tmp/t.rep of=/dev/$vg/rep bs=1M oflag=direct
leg=$vg-rep_mimage_1
dm_reload $leg "0 $(sectors /dev/mapper/$leg) error"
# A write meets the dead image: dm-raid1 marks it D and holds the write until the repair
# reloads the mirror.
dd if=/tmp/t.rep of=/dev/$vg/rep bs=64k count=16 conv=fsync 2>/dev/null &
dd_pid=$!
marked_failed() {
	i=0
	while [ $i -lt 100 ]; do
		dmsetup status $vg-rep | grep -q ' AD ' && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}
check "image 1 marked failed (D)" marked_failed
orion-lvm --config 'activation { mirror_image_fault_policy = "allocate" }' \
	lvconvert --repair --use-policies -i 1 $vg/rep >/tmp/t.rep.out 2>&1
check_eq "orion-lvm lvconvert --repair --use-policies -i 1 (allocate)" 0 $?
note "lvconvert --repair:" "$(cat /tmp/t.rep.out)"
check_eq "the last line: Converted: 100.00%" "  $vg/rep: Converted: 100.00%" "$(tail -n 1 /tmp/t.rep.out)"
check_eq "every progress line as LVM2's poller prints it" "" \
	"$(grep Converted /tmp/t.rep.out | grep -vE "^  $vg/rep: Converted: [0-9]{1,3}\.[0-9]{2}%\$")"
check_eq "in sync when the command returns" "100.00" \
	"$(orion-lvm lvs --noheadings -o copy_percent $vg/rep | tr -d ' ')"
wait $dd_pid
check_eq "the write held by the failure completes" 0 $?
check "both images hold the same data" cmp /dev/mapper/$vg-rep_mimage_0 /dev/mapper/$vg-rep_mimage_1
check "rep reads back what was written" cmp -n $((1 << 20)) /dev/$vg/rep /tmp/t.rep
check "real vgck passes after the repair" vgck $vg
check "orion-lvm lvremove rep" orion-lvm lvremove $vg/rep
check "orion-lvm vgremove -f" orion-lvm vgremove -f $vg
