# orion-lvm extent allocation against real LVM2 (2.03.16): from the same VG state (put
# back with vgcfgrestore between the two tools), each lvcreate/lvextend with each
# allocation policy (normal, contiguous, cling, anywhere) must pick the same extents as
# real LVM2, or fail where real LVM2 fails.

ramdisks 3 96
vg=vgal
check "orion-lvm vgcreate over three ramdisks (23 extents each)" orion-lvm vgcreate $vg /dev/ram0 /dev/ram1 /dev/ram2

layout() {
	lvs -a --noheadings -o lv_name,lv_size,origin_size,seg_pe_ranges,lv_allocation_policy --separator ' ' $vg |
		sed 's/^ *//' | sort
}
note() { printf '%s\n' "$@" | sed 's/^/# /'; }

# same DESC "REAL LVM2 COMMAND" "ORION-LVM COMMAND": runs each from the current state and
# compares the layouts (or that both fail); the state after is ours.
same() {
	orion-lvm vgcfgbackup -f /tmp/t.state $vg >/dev/null
	if sh -c "$2" >/tmp/t.real-out 2>&1; then real_rc=0; else real_rc=1; fi
	real=$(layout)
	orion-lvm vgcfgrestore -f /tmp/t.state $vg >/dev/null
	if sh -c "$3" >/tmp/t.ours-out 2>&1; then ours_rc=0; else ours_rc=1; fi
	got=$(layout)
	note "$1: real rc $real_rc:" "$real"
	if [ $real_rc -ne $ours_rc ]; then
		tap_not_ok "$1" "real LVM2 exit $real_rc, orion-lvm exit $ours_rc" \
			"$(cat /tmp/t.real-out)" "$(cat /tmp/t.ours-out)"
	else
		check_eq "$1" "$real" "$got"
	fi
}

# Fill: a (20) and b (2) on pv0, one free extent left there.
check "orion-lvm lvcreate a" orion-lvm lvcreate -an -l 20 -n a $vg
check "orion-lvm lvcreate b" orion-lvm lvcreate -an -l 2 -n b $vg
same "normal: 6 extents, a whole run elsewhere preferred over splitting" \
	"lvcreate -an -Zn -l 6 -n c $vg" "orion-lvm lvcreate -an -l 6 -n c $vg"
same "contiguous: 6 extents in one run" \
	"lvcreate -an -Zn --alloc contiguous -l 6 -n d $vg" "orion-lvm lvcreate -an --alloc contiguous -l 6 -n d $vg"
same "contiguous: 30 extents fail (no run that long)" \
	"lvcreate -an -Zn --alloc contiguous -l 30 -n e $vg" "orion-lvm lvcreate -an --alloc contiguous -l 30 -n e $vg"
same "normal: 30 extents over several PVs" \
	"lvcreate -an -Zn -l 30 -n e $vg" "orion-lvm lvcreate -an -l 30 -n e $vg"
same "lvextend normal: a grows (its next extents are taken)" \
	"lvextend --alloc normal -l +2 $vg/a" "orion-lvm lvextend --alloc normal -l +2 $vg/a"
same "lvextend contiguous fails when the next extents are taken" \
	"lvextend --alloc contiguous -l +1 $vg/a" "orion-lvm lvextend --alloc contiguous -l +1 $vg/a"
same "lvextend cling: on the PVs the LV already uses" \
	"lvextend --alloc cling -l +3 $vg/c" "orion-lvm lvextend --alloc cling -l +3 $vg/c"
same "lvextend of a contiguous LV keeps to its policy" \
	"lvextend -l +1 $vg/d" "orion-lvm lvextend -l +1 $vg/d"
same "striped normal: stripes on different PVs" \
	"lvcreate -an -Zn -i 2 -l 4 -n s $vg" "orion-lvm lvcreate -an -i 2 -l 4 -n s $vg"
check "orion-lvm lvremove e" orion-lvm lvremove $vg/e
same "striped anywhere with room on two PVs: still two PVs" \
	"lvcreate -an -Zn --alloc anywhere -i 2 -l 4 -n t $vg" "orion-lvm lvcreate -an --alloc anywhere -i 2 -l 4 -n t $vg"
same "striped over a PV with two runs: the run that fits best" \
	"lvcreate -an -Zn -i 2 -l 2 -n u $vg" "orion-lvm lvcreate -an -i 2 -l 2 -n u $vg"
check "real vgck passes" vgck $vg
check "orion-lvm vgremove -f" orion-lvm vgremove -f $vg

# Snapshots: the COW LV grows (online), an origin only while inactive, as LVM2 allows.
vg=vgal2
modprobe dm-snapshot
check "orion-lvm vgcreate for snapshots" orion-lvm vgcreate $vg /dev/ram1 /dev/ram2
check "orion-lvm lvcreate origin" orion-lvm lvcreate -an -l 4 -n o $vg
check "orion-lvm lvcreate -s" orion-lvm lvcreate -an -s -l 2 -n s $vg/o
same "lvextend of an inactive origin with a snapshot" \
	"lvextend -l +2 $vg/o" "orion-lvm lvextend -l +2 $vg/o"
same "lvextend of an inactive snapshot" \
	"lvextend -l +1 $vg/s" "orion-lvm lvextend -l +1 $vg/s"
check "orion-lvm vgchange -ay" orion-lvm vgchange -ay $vg
same "lvextend of an active snapshot" \
	"lvextend -l +1 $vg/s" "orion-lvm lvextend -l +1 $vg/s"
check_eq "the live COW device has the new size (4 extents)" 32768 "$(sectors /dev/mapper/$vg-s-cow)"
check_eq "the snapshot target sees it" 32768 \
	"$(dmsetup status $vg-s | awk '{ split($4, a, "/"); print a[2] }')"
same "lvextend of an active origin fails" \
	"lvextend -l +1 $vg/o" "orion-lvm lvextend -l +1 $vg/o"
same "lvreduce of an active snapshot" \
	"lvreduce -f -l -1 $vg/s" "orion-lvm lvreduce -f -l -1 $vg/s"
check_eq "the live COW device shrank to 3 extents" 24576 "$(sectors /dev/mapper/$vg-s-cow)"
check "orion-lvm vgchange -an" orion-lvm vgchange -an $vg
same "lvreduce of an origin fails" \
	"lvreduce -f -l -1 $vg/o" "orion-lvm lvreduce -f -l -1 $vg/o"
check "orion-lvm vgremove -f" orion-lvm vgremove -f $vg

# One PV: stripes only with anywhere.
vg=vgal1
check "orion-lvm vgcreate on one PV" orion-lvm vgcreate $vg /dev/ram0
check "orion-lvm lvcreate a" orion-lvm lvcreate -an -l 5 -n a $vg
same "striped normal on one PV fails" \
	"lvcreate -an -Zn -i 2 -l 4 -n s $vg" "orion-lvm lvcreate -an -i 2 -l 4 -n s $vg"
same "striped anywhere on one PV" \
	"lvcreate -an -Zn --alloc anywhere -i 2 -l 4 -n s $vg" "orion-lvm lvcreate -an --alloc anywhere -i 2 -l 4 -n s $vg"
same "lvextend cling of a linear LV on its PV" \
	"lvextend --alloc cling -l +3 $vg/a" "orion-lvm lvextend --alloc cling -l +3 $vg/a"
check "orion-lvm vgremove -f" orion-lvm vgremove -f $vg
