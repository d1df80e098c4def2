# orion-lvm snapshot merge (lvconvert --merge) against real LVM2 (2.03.16) over the C
# snapshot-merge target: an active origin merges at once and comes back on its own table
# with the snapshot's content; an inactive origin is marked as real LVM2 marks it; a
# merge marked by one tool is carried out by the other's activation.

ramdisks 2 96
modprobe dm-snapshot
vg=vgmg
check "orion-lvm vgcreate" orion-lvm vgcreate $vg /dev/ram0 /dev/ram1
note() { printf '%s\n' "$@" | sed 's/^/# /'; }
record() {
	lvm vgcfgbackup -f /tmp/t.meta $vg >/dev/null 2>&1
	sed -n '/^\t\tsnapshot[0-9]* {/,/^\t\t}/p' /tmp/t.meta | grep -v -e creation_ -e '\bid = '
	lvs -a --noheadings -o lv_name,lv_attr,origin $vg | sed 's/^ *//' | sort
}
gone() {
	i=0
	while [ $i -lt 400 ]; do
		lvs -a --noheadings -o lv_name $vg | grep -qw "$1" || return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

check "orion-lvm lvcreate lin" orion-lvm lvcreate -L 40M -n lin $vg
linear_table=$(dmsetup table $vg-lin)
fill_random /dev/$vg/lin $((4 << 20)) /tmp/t.A
check "orion-lvm lvcreate -s" orion-lvm lvcreate -s -L 8M -n snap $vg/lin
head -c $((2 << 20)) /dev/urandom >/tmp/t.B
dd if=/tmp/t.B of=/dev/$vg/lin bs=64k conv=fsync 2>/dev/null
check "origin changed after the snapshot" sh -c "! cmp -s -n $((4 << 20)) /dev/$vg/lin /tmp/t.A"
check "orion-lvm lvconvert --merge of an active snapshot" orion-lvm lvconvert --merge $vg/snap
check "the origin holds the snapshot's content" cmp -n $((4 << 20)) /dev/$vg/lin /tmp/t.A
check_eq "the origin is back on its own table" "$linear_table" "$(dmsetup table $vg-lin)"
check_eq "no snapshot device left" "" "$(dmsetup ls | grep -e "$vg-snap" -e "$vg-lin-real")"
check_eq "real lvs lists only the origin" "lin" "$(lvs -a --noheadings -o lv_name $vg | tr -d ' ')"
check "real vgck passes" vgck $vg

# Marking an inactive origin: the same metadata as real lvconvert --merge writes.
check "orion-lvm lvcreate -s snap2" orion-lvm lvcreate -s -L 8M -n snap2 $vg/lin
dd if=/tmp/t.B of=/dev/$vg/lin bs=64k conv=fsync 2>/dev/null
check "orion-lvm lvchange -an" orion-lvm lvchange -an $vg/lin
check "orion-lvm vgcfgbackup" orion-lvm vgcfgbackup -f /tmp/t.state $vg
check "real lvconvert --merge of an inactive origin" lvconvert --merge $vg/snap2
real=$(record)
note "real LVM2's mark:" "$real"
check "orion-lvm vgcfgrestore" orion-lvm vgcfgrestore -f /tmp/t.state $vg
check "orion-lvm lvconvert --merge of an inactive origin" orion-lvm lvconvert --merge $vg/snap2
check_eq "the same snapshot record and attributes as real LVM2's" "$real" "$(record)"
for lv in lin snap2; do
	check_eq "orion-lvm lv_attr of $lv equals real lvs' while merging" \
		"$(lvs -a --noheadings -o lv_attr $vg/$lv | tr -d ' ')" \
		"$(orion-lvm lvs -a --noheadings -o lv_attr $vg/$lv | tr -d ' ')"
done
check "real vgchange -ay starts our marked merge" vgchange -ay $vg
check "real LVM2's polling finishes it" gone snap2
check "the origin holds snap2's content" cmp -n $((4 << 20)) /dev/$vg/lin /tmp/t.A
check_eq "real LVM2 left the origin on its own table" "$linear_table" "$(dmsetup table $vg-lin)"

# A merge real LVM2 marked, carried out by orion-lvm's activation.
check "real lvcreate -s snap3" lvcreate -y -s -L 8M -n snap3 $vg/lin
dd if=/tmp/t.B of=/dev/$vg/lin bs=64k conv=fsync 2>/dev/null
check "real lvchange -an" lvchange -an $vg/lin
check "real lvconvert --merge (marks)" lvconvert --merge $vg/snap3
check "orion-lvm vgchange -ay merges it" orion-lvm vgchange -ay $vg
check "the origin holds snap3's content" cmp -n $((4 << 20)) /dev/$vg/lin /tmp/t.A
check_eq "and is on its own table" "$linear_table" "$(dmsetup table $vg-lin)"
check_eq "real lvs lists only the origin" "lin" "$(lvs -a --noheadings -o lv_name $vg | tr -d ' ')"
check "real vgck passes" vgck $vg
check_fails "lvconvert --merge of a non-snapshot fails" orion-lvm lvconvert --merge $vg/lin
check "orion-lvm vgremove -f" orion-lvm vgremove -f $vg
