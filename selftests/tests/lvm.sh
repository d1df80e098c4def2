# orion-lvm against real LVM2 (2.03.16) in the guest: activation produces exactly the
# tables, names and UUIDs real vgchange -ay produces; data written through one activation
# reads back through the other; LVs made by one tool are activated and removed by the
# other; --target-prefix runs the same tables on our module's targets.

ramdisks 5 96
vg=vgt
check "orion-lvm vgcreate over three ramdisks" orion-lvm vgcreate $vg /dev/ram0 /dev/ram1 /dev/ram2
check "orion-lvm lvcreate -an linear" orion-lvm lvcreate -an -L 40M -n lin $vg
check "orion-lvm lvcreate -an striped (3 x 64 KiB)" orion-lvm lvcreate -an -l 6 -i 3 -I 64k -n str $vg
check "orion-lvm lvcreate -an linear over two PVs" orion-lvm lvcreate -an -L 96M -n span $vg

# Real activation first: the reference tables.
check "real vgchange -ay on our VG" vgchange -ay $vg
dmsetup table | sort >/tmp/t.real-table
dmsetup info -c --noheadings -o name,uuid | sort >/tmp/t.real-info
check "real activation made 3 devices" sh -c "[ \$(wc -l </tmp/t.real-table) -eq 4 ]"
for lv in lin str span; do
	fill_random /dev/$vg/$lv $((4 << 20)) /tmp/t.data-$lv
done
check "real vgchange -an" vgchange -an $vg
check "nothing left active" sh -c "[ -z \"\$(dmsetup ls | grep -v 'No devices')\" ]"

check "orion-lvm vgchange -ay" orion-lvm vgchange -ay $vg
dmsetup table | sort >/tmp/t.ours-table
dmsetup info -c --noheadings -o name,uuid | sort >/tmp/t.ours-info
check "dmsetup table identical to real LVM2's" cmp /tmp/t.real-table /tmp/t.ours-table
check "device names and DM UUIDs identical to real LVM2's" cmp /tmp/t.real-info /tmp/t.ours-info
for lv in lin str span; do
	check "data written through real activation reads back through ours ($lv)" \
		cmp -n $((4 << 20)) /dev/$vg/$lv /tmp/t.data-$lv
	check "/dev/mapper node of $lv is a block device" test -b /dev/mapper/$vg-$lv
done
# Reports: attributes as real lvs shows them, live I/O counters.
ours_attr() { orion-lvm lvs | awk -v lv="$1" '$1 == lv { print $3 }'; }
real_attr() { lvs --noheadings -o lv_attr "$vg/$1" | tr -d ' '; }
check_eq "lv_attr of an active LV equals real lvs'" "$(real_attr lin)" "$(ours_attr lin)"
exec 3</dev/$vg/lin
check_eq "lv_attr of an open LV equals real lvs'" "$(real_attr lin)" "$(ours_attr lin)"
exec 3<&-
w0=$(orion-lvm lvs --metrics | awk '$1 == "span" { print $NF }')
dd if=/dev/zero of=/dev/$vg/span bs=64k count=16 oflag=direct 2>/dev/null
w1=$(orion-lvm lvs --metrics | awk '$1 == "span" { print $NF }')
check "live write counter grew by the 1 MiB written ($w0 -> $w1)" test $((w1 - w0)) -ge 2048
fill_random /dev/$vg/span $((4 << 20)) /tmp/t.data-span
fill_random /dev/$vg/str $((3 << 20)) /tmp/t.data-str2
check "orion-lvm vgchange -an" orion-lvm vgchange -an $vg
check_eq "lv_attr of an inactive LV equals real lvs'" "$(real_attr lin)" "$(ours_attr lin)"
check "real vgchange -ay again" vgchange -ay $vg
check "data written through ours reads back through real activation" \
	cmp -n $((3 << 20)) /dev/$vg/str /tmp/t.data-str2
check "and on the two-segment LV" cmp -n $((4 << 20)) /dev/$vg/span /tmp/t.data-span
check "real lvs sees our LVs active" sh -c "lvs --noheadings -o lv_name,lv_attr $vg | grep -q 'lin.*-wi-a'"
vgchange -an $vg >/dev/null

# Beside the C targets: the same tables on orion-linear / orion-striped.
check "load orion_dm with prefix=orion-" load_orion orion-
check "orion-lvm --target-prefix orion- vgchange -ay" orion-lvm --target-prefix orion- vgchange -ay $vg
dmsetup table | sort | sed 's/ orion-/ /' >/tmp/t.prefixed
check "prefixed tables equal real LVM2's but for the prefix" cmp /tmp/t.real-table /tmp/t.prefixed
check "tables use our targets" sh -c "dmsetup table $vg-str | grep -q ' orion-striped '"
check "data reads back through our targets" cmp -n $((3 << 20)) /dev/$vg/str /tmp/t.data-str2
check "and through our linear" cmp -n $((4 << 20)) /dev/$vg/lin /tmp/t.data-lin
orion-lvm vgchange -an $vg >/dev/null

# LVs made by the other tool.
check "real lvcreate in our VG" lvcreate -y -L 8M -n reallv $vg
real_tab=$(dmsetup table $vg-reallv)
lvchange -an $vg/reallv
check "orion-lvm activates the LV real LVM2 made" orion-lvm lvchange -ay $vg/reallv
check_eq "with the same table" "$real_tab" "$(dmsetup table $vg-reallv)"
check "orion-lvm removes the LV real LVM2 made" orion-lvm lvremove $vg/reallv
check "real lvs no longer lists it" sh -c "! lvs --noheadings -o lv_name $vg | grep -q reallv"
check "orion-lvm lvcreate activates by default" orion-lvm lvcreate -L 12M -n ourlv $vg
check "real lvremove removes the LV we made and activated" lvremove -y $vg/ourlv
check_fails "our device is gone" dmsetup info $vg-ourlv
# Snapshots: LVM2's device stack (origin -real under snapshot-origin, -cow under
# snapshot), made by either tool, seen and removed by the other.
modprobe dm-snapshot
check "real lvcreate -s of our LV" lvcreate -y -s -L 8M -n rsnap $vg/lin
check "real vgchange -ay with the snapshot" vgchange -ay $vg
real_stack=$(dm_tables_by_name)
real_info=$(dmsetup info -c --noheadings -o name,uuid | sort | grep -v -e "^$vg-str:" -e "^$vg-span:")
check "real stack has origin, -real, -cow and snapshot" sh -c "[ \$(dmsetup ls | grep -c \"^$vg-\(lin\|rsnap\)\") -eq 4 ]"
check "real vgchange -an" vgchange -an $vg
check "orion-lvm vgchange -ay with a snapshot" orion-lvm vgchange -ay $vg
check_eq "snapshot device stack identical to real LVM2's" \
	"$(echo "$real_stack" | grep -v -e "^$vg-str:" -e "^$vg-span:")" \
	"$(dm_tables_by_name | grep -v -e "^$vg-str:" -e "^$vg-span:")"
check_eq "names and DM UUIDs identical" "$real_info" \
	"$(dmsetup info -c --noheadings -o name,uuid | sort | grep -v -e "^$vg-str:" -e "^$vg-span:")"
check_eq "lv_attr of the origin equals real lvs'" "$(real_attr lin)" "$(ours_attr lin)"
check_eq "lv_attr of the snapshot equals real lvs'" "$(real_attr rsnap)" "$(ours_attr rsnap)"
fill_random /dev/$vg/str $((1 << 20)) /tmp/t.before
check "orion-lvm lvcreate -s of an active LV" orion-lvm lvcreate -s -L 8M -n osnap $vg/str
head -c $((1 << 20)) /dev/urandom >/tmp/t.after
dd if=/tmp/t.after of=/dev/$vg/str bs=64k conv=fsync 2>/dev/null
check "our snapshot keeps the data from before" cmp -n $((1 << 20)) /dev/$vg/osnap /tmp/t.before
check "the origin has the new data" cmp -n $((1 << 20)) /dev/$vg/str /tmp/t.after
check "real lvs shows our snapshot of str" sh -c "lvs --noheadings -o lv_name,origin $vg | grep -q 'osnap *str'"
check_eq "lv_attr of our snapshot equals real lvs'" "$(real_attr osnap)" "$(ours_attr osnap)"
check "real lvremove removes our snapshot" lvremove -y $vg/osnap
check_eq "str back to its striped table" striped "$(dmsetup table $vg-str | awk '{ print $3 }')"
check "orion-lvm lvremove removes real LVM2's snapshot" orion-lvm lvremove $vg/rsnap
check_eq "lin back to its linear table" linear "$(dmsetup table $vg-lin | awk '{ print $3 }')"
check_fails "no -real device left" dmsetup info $vg-lin-real
check "data of lin intact" cmp -n $((4 << 20)) /dev/$vg/lin /tmp/t.data-lin
check "real vgck passes with snapshots gone" vgck $vg
orion-lvm vgchange -an $vg >/dev/null

# Resizing: the same extension real lvextend chooses.
check "orion-lvm lvcreate -an grow" orion-lvm lvcreate -an -L 8M -n grow $vg
check "real lvextend of our LV" lvextend -L +8M $vg/grow
orion-lvm lvchange -ay $vg/grow
real_tab=$(dmsetup table $vg-grow)
check "orion-lvm lvreduce (active LV)" orion-lvm lvreduce -f -L -8M $vg/grow
check_eq "reduced to 8 MiB" 16384 "$(sectors /dev/$vg/grow)"
check "orion-lvm lvextend (active LV)" orion-lvm lvextend -L +8M $vg/grow
check_eq "our extension gives the table real lvextend gave" "$real_tab" "$(dmsetup table $vg-grow)"
check "real lvs agrees on the size" sh -c "lvs --noheadings --units s --nosuffix -o lv_size $vg/grow | grep -qw 32768"
orion-lvm lvchange -an $vg/grow

# Online growth of a mounted ext4 under fio load.
check "orion-lvm lvcreate -L 32M fs" orion-lvm lvcreate -L 32M -n fs $vg
mkfs.ext4 -q /dev/$vg/fs
mount /dev/$vg/fs /mnt
fio --name=grow --filename=/mnt/f --size=12M --rw=randwrite --bs=4k --ioengine=psync \
	--verify=crc32c --verify_fatal=1 --loops=4 --output=/tmp/t.fio >/dev/null 2>&1 &
fio_pid=$!
sleep 1
check "orion-lvm lvextend +48M while fio writes" orion-lvm lvextend -L +48M $vg/fs
wait $fio_pid
fio_rc=$?
[ $fio_rc -eq 0 ] || cat /tmp/t.fio
check_eq "fio verify passes across the resize" 0 $fio_rc
check_eq "device size 80 MiB while mounted" 163840 "$(sectors /dev/$vg/fs)"
umount /mnt
check "fsck clean after growth under load" e2fsck -fn /dev/$vg/fs
# resize2fs in this guest does not see its mounts (also with real LVM2's activation), so
# the file system grows unmounted.
# resize2fs wants a check recorded on disk; -n above records none.
e2fsck -fp /dev/$vg/fs >/dev/null
check "resize2fs grows the file system" resize2fs /dev/$vg/fs
check "fsck clean after resize2fs" e2fsck -fn /dev/$vg/fs
mount /dev/$vg/fs /mnt
check "file system now about 80 MiB" sh -c "[ \$(df -k /mnt | awk 'NR == 2 { print \$2 }') -gt 70000 ]"
umount /mnt

# Renaming active LVs and VGs: the dm devices (layers included) get the names real
# LVM2's renames give them, the DM UUIDs stay, data stays readable under the new names.
dm_names() { dmsetup info -c --noheadings -o name,uuid --separator ' ' | grep -v '^No devices' | sort; }
check "orion-lvm lvcreate -L 8M rn (active)" orion-lvm lvcreate -L 8M -n rn $vg
fill_random /dev/$vg/rn $((2 << 20)) /tmp/t.rn
rn_uuid=$(dmsetup info -c --noheadings -o uuid $vg-rn)
check "real lvrename of the active LV" lvm lvrename $vg rn rn2
real_names=$(dm_names)
check "real lvrename back" lvm lvrename $vg rn2 rn
check "orion-lvm lvrename of the active LV" orion-lvm lvrename $vg rn rn2
check_eq "dm names and UUIDs equal to real lvrename's" "$real_names" "$(dm_names)"
check_eq "DM UUID kept" "$rn_uuid" "$(dmsetup info -c --noheadings -o uuid $vg-rn2)"
check "data reads back through /dev/$vg/rn2" cmp -n $((2 << 20)) /dev/$vg/rn2 /tmp/t.rn
check "/dev/$vg/rn is gone" test ! -e /dev/$vg/rn
check "orion-lvm snapshot of rn2" orion-lvm lvcreate -s -L 8M -n rns $vg/rn2
check "real lvrename of the active origin" lvm lvrename $vg rn2 rn3
real_names=$(dm_names)
check "real lvrename back" lvm lvrename $vg rn3 rn2
check "orion-lvm lvrename of the active origin" orion-lvm lvrename $vg rn2 rn3
check_eq "origin, -real and snapshot names equal to real lvrename's" "$real_names" "$(dm_names)"
check "origin data reads back" cmp -n $((2 << 20)) /dev/$vg/rn3 /tmp/t.rn
check "snapshot data reads back" cmp -n $((2 << 20)) /dev/$vg/rns /tmp/t.rn
check "real vgrename of the active VG" lvm vgrename $vg vgr
real_names=$(dm_names)
check "real vgrename back" lvm vgrename vgr $vg
check "orion-lvm vgrename of the active VG" orion-lvm vgrename $vg vgr
check_eq "every device renamed as real vgrename renames it" "$real_names" "$(dm_names)"
check "data reads back through /dev/vgr/rn3" cmp -n $((2 << 20)) /dev/vgr/rn3 /tmp/t.rn
check_eq "real lvs sees rn3 active" "a" "$(lvs --noheadings -o lv_attr vgr/rn3 | tr -d ' ' | cut -c5)"
check "orion-lvm vgrename back" orion-lvm vgrename vgr $vg
check "orion-lvm lvremove of the snapshot" orion-lvm lvremove $vg/rns
check "orion-lvm lvremove rn3" orion-lvm lvremove $vg/rn3

# pvmove on a VG of its own: started in the background (the poller first looks after -i
# seconds, as LVM2's, so nothing is recorded as copied yet) and aborted, by ours and by
# real LVM2: every extent is back on the source; then a foreground move prints LVM2's
# progress lines.
mv_layout() { lvs -a --noheadings -o lv_name,devices --separator ' ' vgmv | sed 's/^ *//' | sort; }
check "orion-lvm vgcreate vgmv" orion-lvm vgcreate vgmv /dev/ram3 /dev/ram4
check "orion-lvm lvcreate m1 and m2 on /dev/ram3" \
	sh -c "orion-lvm lvcreate -L 16M -n m1 vgmv && orion-lvm lvcreate -L 16M -n m2 vgmv"
fill_random /dev/vgmv/m1 $((16 << 20)) /tmp/t.m1
fill_random /dev/vgmv/m2 $((16 << 20)) /tmp/t.m2
mv_before=$(mv_layout)
check "orion-lvm pvmove -b -i 600 /dev/ram3 /dev/ram4" orion-lvm pvmove -b -i 600 /dev/ram3 /dev/ram4
check "real lvs shows the move in progress" sh -c "lvs -a --noheadings -o lv_name vgmv | grep -q pvmove0"
check "orion-lvm pvmove --abort" orion-lvm pvmove --abort
check_eq "every extent back on the source after our abort" "$mv_before" "$(mv_layout)"
check_eq "no pvmove LV or device left" "" "$(dmsetup ls | grep pvmove; lvs -a --noheadings -o lv_name vgmv | grep pvmove)"
check "m1 intact" cmp /dev/vgmv/m1 /tmp/t.m1
check "orion-lvm pvmove -b -i 600 again" orion-lvm pvmove -b -i 600 /dev/ram3 /dev/ram4
check "real pvmove --abort of our move" pvmove --abort
check_eq "every extent back on the source after real LVM2's abort" "$mv_before" "$(mv_layout)"
check_eq "no pvmove LV or device left" "" "$(dmsetup ls | grep pvmove; lvs -a --noheadings -o lv_name vgmv | grep pvmove)"
check "m2 intact" cmp /dev/vgmv/m2 /tmp/t.m2
check "orion-lvm pvmove -i 1 /dev/ram3 /dev/ram4 in the foreground" \
	sh -c "orion-lvm pvmove -i 1 /dev/ram3 /dev/ram4 >/tmp/t.progress"
note() { printf '%s\n' "$@" | sed 's/^/# /'; }
note "orion-lvm pvmove -i 1:" "$(cat /tmp/t.progress)"
check_eq "it ends with LVM2's last line" "  /dev/ram3: Moved: 100.00%" "$(tail -n 1 /tmp/t.progress)"
check_eq "every line is an LVM2 progress line" "" \
	"$(grep -vE '^  /dev/ram3: Moved: [0-9]+\.[0-9][0-9]%$' /tmp/t.progress)"
check "real pvmove -i 1 back prints lines of the same form" \
	sh -c "pvmove -i 1 /dev/ram4 /dev/ram3 >/tmp/t.rprogress && ! grep -vE '^  /dev/ram4: Moved: [0-9]+\.[0-9][0-9]%$' /tmp/t.rprogress"
check "m1 and m2 intact after both moves" sh -c "cmp /dev/vgmv/m1 /tmp/t.m1 && cmp /dev/vgmv/m2 /tmp/t.m2"
check "real vgck passes on vgmv" vgck vgmv
check "orion-lvm vgremove -f vgmv" orion-lvm vgremove -f vgmv
check "real vgck passes" vgck $vg
check "orion-lvm vgremove -f" orion-lvm vgremove -f $vg
check "real vgs no longer finds it" sh -c "! vgs $vg 2>/dev/null"
