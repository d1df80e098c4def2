# thin-pool and thin: orion-thin-pool/orion-thin against the C thin-pool/thin, driven the
# same way over identical ramdisks; then each side opens the other's metadata.

modprobe dm-thin-pool || die "modprobe dm-thin-pool failed"
load_orion orion-
ramdisks 6 64
thin_pair

# devno DEV: "major:minor".
devno() { ls -lL "$1" | awk '{ sub(",", "", $5); print $5 ":" $6 }'; }

# both CMD...: runs CMD with ours (o) and theirs (c) substituted for @.
both() {
	for s in o c; do
		eval "$(printf '%s\n' "$*" | sed "s/@/$s/g")" || return 1
	done
}

dd if=/dev/zero of=$om bs=4k count=1 2>/dev/null
dd if=/dev/zero of=$cm bs=4k count=1 2>/dev/null
dm_create t.opool "0 $plen orion-thin-pool $om $od 128 16"
dm_create t.cpool "0 $plen thin-pool $cm $cd 128 16"
check_eq "new pool: table identical to C (devices aside)" \
	"$(table_of t.cpool | cut -d' ' -f1-3,6-)" "$(table_of t.opool | cut -d' ' -f1-3,6-)"
check_eq "the table names our metadata and data devices" \
	"$(dmsetup table t.opool | cut -d' ' -f4-5)" "$(devno $om) $(devno $od)"
check_eq "new pool: status identical to C" "$(pool_status t.cpool)" "$(pool_status t.opool)"

for p in opool cpool; do
	dmsetup message t.$p 0 "create_thin 1"
	dmsetup message t.$p 0 "create_thin 2"
done
dm_create t.o1 "0 65536 orion-thin /dev/mapper/t.opool 1"
dm_create t.c1 "0 65536 thin /dev/mapper/t.cpool 1"
dm_create t.o2 "0 32768 orion-thin /dev/mapper/t.opool 2"
dm_create t.c2 "0 32768 thin /dev/mapper/t.cpool 2"
check_eq "thin: table identical to C (pool device aside)" \
	"$(table_of t.c1 | cut -d' ' -f1-3,5)" "$(table_of t.o1 | cut -d' ' -f1-3,5)"
check_eq "unwritten thin: status identical to C" "$(status_of t.c1)" "$(status_of t.o1)"
check "an unwritten thin device reads zeroes" is_zero /dev/mapper/t.o1 0 65536

# Full blocks, then partial writes into new blocks (zeroed around them) and into mapped ones.
fill_random /dev/mapper/t.o1 $((8 << 20)) /tmp/t.d1
dd if=/tmp/t.d1 of=/dev/mapper/t.c1 bs=64k conv=fsync 2>/dev/null
head -c 4096 /dev/urandom >/tmp/t.small
for s in o c; do
	dd if=/tmp/t.small of=/dev/mapper/t.${s}1 bs=512 seek=40003 conv=fsync 2>/dev/null
	dd if=/tmp/t.small of=/dev/mapper/t.${s}1 bs=512 seek=1001 conv=fsync 2>/dev/null
	dd if=/tmp/t.small of=/dev/mapper/t.${s}2 bs=512 seek=32000 oflag=direct 2>/dev/null
done
check "thin 1 reads the same bytes as C's" same_bytes /dev/mapper/t.o1 /dev/mapper/t.c1 $((32 << 20))
check "thin 2 reads the same bytes as C's" same_bytes /dev/mapper/t.o2 /dev/mapper/t.c2 $((16 << 20))
check "a partial write into a new block leaves the rest zero" is_zero /dev/mapper/t.o1 40011 53
check_eq "written thins: status identical to C" \
	"$(status_of t.c1; status_of t.c2)" "$(status_of t.o1; status_of t.o2)"
check_eq "written pool: status identical to C" "$(pool_status t.cpool)" "$(pool_status t.opool)"

# A snapshot, then writes to the origin break sharing; the snapshot keeps the old data.
for s in o c; do
	dmsetup suspend t.${s}1
	dmsetup message t.${s}pool 0 "create_snap 3 1"
	dmsetup resume t.${s}1
done
head -c $((1 << 20)) /dev/urandom >/tmp/t.d2
for s in o c; do
	dd if=/tmp/t.d2 of=/dev/mapper/t.${s}1 bs=64k seek=10 conv=fsync 2>/dev/null
	dd if=/tmp/t.small of=/dev/mapper/t.${s}1 bs=512 seek=3 conv=fsync 2>/dev/null
done
dm_create t.o3 "0 65536 orion-thin /dev/mapper/t.opool 3"
dm_create t.c3 "0 65536 thin /dev/mapper/t.cpool 3"
dd if=/tmp/t.d1 of=/tmp/t.d1s bs=64k count=128 2>/dev/null
dd if=/tmp/t.small of=/tmp/t.d1s bs=512 seek=1001 conv=notrunc 2>/dev/null
check "the snapshot keeps the data from before the overwrite" \
	same_bytes /dev/mapper/t.o3 /tmp/t.d1s $((8 << 20))
check "the snapshot reads the same bytes as C's" same_bytes /dev/mapper/t.o3 /dev/mapper/t.c3 $((32 << 20))
check "the origin has the new data" sh -c "dd if=/dev/mapper/t.o1 bs=64k skip=10 count=16 2>/dev/null | cmp - /tmp/t.d2"
check "origin after breaking sharing: same bytes as C's" \
	same_bytes /dev/mapper/t.o1 /dev/mapper/t.c1 $((32 << 20))
check_eq "snapshot and origin: status identical to C" \
	"$(status_of t.c1; status_of t.c3)" "$(status_of t.o1; status_of t.o3)"
check_eq "pool after snapshots: status identical to C" "$(pool_status t.cpool)" "$(pool_status t.opool)"

# Messages: accepted and refused alike.
check_fails "deleting an open thin device is refused by ours" dmsetup message t.opool 0 "delete 2"
check_fails "... and by C" dmsetup message t.cpool 0 "delete 2"
dmsetup remove t.o2 t.c2
for m in "set_transaction_id 0 5" "delete 2" "reserve_metadata_snap"; do
	check "message '$m' accepted by ours and C" both "dmsetup message t.@pool 0 '$m'"
done
check_eq "after set_transaction_id, delete, reserve_metadata_snap: status as C's (held root aside)" \
	"$(pool_status t.cpool | cut -d' ' -f1-6,8-)" "$(pool_status t.opool | cut -d' ' -f1-6,8-)"
check "a held metadata root is reported" sh -c "status_of t.opool | awk '{ exit \$7 == \"-\" }'"
check "thin_dump -m reads our metadata snapshot" sh -c "thin_dump -m $om >/tmp/t.held.xml"
both "dmsetup message t.@pool 0 release_metadata_snap"
for m in "create_thin 1" "set_transaction_id 4 6" "create_snap 9 8" "delete 77" "bogus" "create_thin 16777216"; do
	check_fails "message '$m' refused by ours" dmsetup message t.opool 0 "$m"
	check_fails "... and by C" dmsetup message t.cpool 0 "$m"
done

# Growing the pool: a bigger table is resized at resume.
dm_create t.odata "0 $plen linear $od 0"
dmsetup remove t.o1 t.o3
dmsetup remove t.opool
check "thin_check accepts our metadata after use" thin_check -q $om
thin_dump $om >/tmp/t.ours.xml
dmsetup remove t.c1 t.c3 t.cpool
check "thin_check accepts C's metadata (sanity)" thin_check -q $cm
thin_dump $cm >/tmp/t.theirs.xml
check_eq "thin_dump: same devices and mapped blocks as C's" \
	"$(grep '<device ' /tmp/t.theirs.xml | sed 's/ creation_time.*//')" \
	"$(grep '<device ' /tmp/t.ours.xml | sed 's/ creation_time.*//')"

# Each side opens the other's metadata and reads back the same data.
dm_create t.cpool "0 $plen thin-pool $om $od 128 16"
dm_create t.c1 "0 65536 thin /dev/mapper/t.cpool 1"
dm_create t.c3 "0 65536 thin /dev/mapper/t.cpool 3"
dd if=/dev/mapper/t.c1 of=/tmp/t.thin1 bs=1M count=32 2>/dev/null
check "C opens our metadata: the snapshot reads back" same_bytes /dev/mapper/t.c3 /tmp/t.d1s $((8 << 20))
dmsetup remove t.c1 t.c3 t.cpool t.odata
dm_create t.opool "0 $plen orion-thin-pool $cm $cd 128 16"
dm_create t.o1 "0 65536 orion-thin /dev/mapper/t.opool 1"
check "ours opens C's metadata: thin 1 reads what C's thin 1 held" \
	same_bytes /dev/mapper/t.o1 /tmp/t.thin1 $((32 << 20))
dmsetup remove t.o1 t.opool

# fio verify over a thin device with a snapshot taken halfway: every block is provisioned
# or broken out of sharing under load, and what fio wrote reads back.
dd if=/dev/zero of=$om bs=4k count=1 2>/dev/null
dm_create t.opool "0 $plen orion-thin-pool $om $od 128 16"
dmsetup message t.opool 0 "create_thin 1"
dm_create t.o1 "0 65536 orion-thin /dev/mapper/t.opool 1"
check "fio randwrite verify on a fresh thin device" fio_verify /dev/mapper/t.o1 \
	--rw=randwrite --bs=4k --size=24M --iodepth=16 --ioengine=libaio --randrepeat=1
dmsetup suspend t.o1
dmsetup message t.opool 0 "create_snap 2 1"
dmsetup resume t.o1
dd if=/dev/mapper/t.o1 of=/tmp/t.before bs=1M count=24 2>/dev/null
check "fio randwrite verify again after a snapshot (sharing broken under load)" \
	fio_verify /dev/mapper/t.o1 --rw=randwrite --bs=16k --size=24M --iodepth=8 --ioengine=libaio
dm_create t.o2 "0 65536 orion-thin /dev/mapper/t.opool 2"
check "the snapshot still reads the data from before" same_bytes /dev/mapper/t.o2 /tmp/t.before $((24 << 20))
dmsetup remove t.o2 t.o1 t.opool
check "thin_check accepts the metadata after fio" thin_check -q $om

# A data device that zeroes itself (loop on a tmpfs file: its write-zeroes punches holes)
# is asked to zero the rest of new blocks: partial first writes read back as C's, and the
# backing file holds only the written pages (C zeroes through the pool's mapped device,
# which takes no write-zeroes, so its kcopyd writes the zero page: 64 KiB a block).
modprobe loop || die "modprobe loop failed"
mkdir -p /tmp/wz
mount -t tmpfs tmpfs /tmp/wz || die "no tmpfs"
for s in o c; do
	dd if=/dev/zero of=/tmp/wz/$s.img bs=1k count=0 seek=65536 2>/dev/null
	eval "wz_$s=\$(losetup -f --show /tmp/wz/$s.img)" || die "losetup failed"
	dd if=/dev/zero of=$(meta_for $s) bs=4k count=1 2>/dev/null
done
check "the loop data devices take write-zeroes" \
	test "$(cat /sys/block/${wz_o#/dev/}/queue/write_zeroes_max_bytes)" -gt 0
dm_create t.opool "0 131072 orion-thin-pool $om $wz_o 128 0" || die "our pool on loop"
dm_create t.cpool "0 131072 thin-pool $cm $wz_c 128 0" || die "C's pool on loop"
for s in o c; do
	dmsetup message t.${s}pool 0 "create_thin 1" || die "create_thin on loop"
	dm_create t.${s}1 "0 65536 $(type_for $s thin) /dev/mapper/t.${s}pool 1" ||
		die "thin on loop"
	# 4 KiB into the middle of each of 64 new blocks.
	i=0
	while [ $i -lt 64 ]; do
		dd if=/tmp/t.small of=/dev/mapper/t.${s}1 bs=512 seek=$((i * 256 + 40)) \
			oflag=direct 2>/dev/null
		i=$((i + 1))
	done
done
check "write-zeroes data device: thin reads the same bytes as C's" \
	same_bytes /dev/mapper/t.o1 /dev/mapper/t.c1 $((8 << 20))
check "write-zeroes data device: a new block is zero before the write" is_zero /dev/mapper/t.o1 0 40
check "... and after it" is_zero /dev/mapper/t.o1 48 80
check_eq "write-zeroes data device: the backing file holds the 64 written 4 KiB pages (KiB)" \
	256 "$(du -k /tmp/wz/o.img | cut -f1)"
check_eq "... C's the 64 blocks in full (KiB)" 4096 "$(du -k /tmp/wz/c.img | cut -f1)"
dmsetup remove t.o1 t.c1 t.opool t.cpool
losetup -d $wz_o
losetup -d $wz_c
umount /tmp/wz

# Bad tables: refused by ours with C's message.
bad_table thin-pool "65536" "too few arguments"
bad_table thin-pool "65536 $om $om 128 0" "the same metadata and data device"
bad_table thin-pool "65536 $om $od 100 0" "a block size not a multiple of 64 KiB"
bad_table thin-pool "65536 $om $od 64 0" "a block size below 64 KiB"
bad_table thin-pool "65536 $om $od 128 x" "a bad low water mark"
bad_table thin-pool "65536 $om $od 128 0 1 frobnicate" "an unknown feature"
bad_table thin-pool "65536 $om $od 128 0 5 a b c d e" "too many features"
dm_create t.opool "0 $plen orion-thin-pool $om $od 128 16"
bad_table thin "65536 /dev/mapper/t.opool" "too few arguments"
bad_table thin "65536 /dev/mapper/t.opool 99" "a device the pool does not have" stricter
bad_table thin "65536 /dev/mapper/t.opool 16777216" "a device id over 24 bits" stricter
dmsetup remove t.opool

# Drop-in: with the C thin-pool module unloaded and orion_dm loaded without a prefix, real
# LVM2 makes, activates (running thin_check) and removes a pool and thin volumes on ours.
rmmod dm_thin_pool || die "rmmod dm_thin_pool failed"
unload_orion
load_orion ""
check "orion_dm registers thin-pool under its own name" sh -c "dmsetup targets | grep -q '^thin-pool '"
check "real pvcreate/vgcreate" sh -c "pvcreate -y -ff /dev/ram4 /dev/ram5 >/dev/null && vgcreate vgdrop /dev/ram4 /dev/ram5 >/dev/null"
check "real lvcreate --type thin-pool on orion's thin-pool" lvcreate -y --type thin-pool -L 48M -n pool vgdrop
check "real lvcreate -V thin volume" lvcreate -y -V 64M -T vgdrop/pool -n thin1
check "fio verify through the LVM thin volume" fio_verify /dev/vgdrop/thin1 \
	--rw=randwrite --bs=64k --size=32M --iodepth=4 --ioengine=libaio
dd if=/dev/vgdrop/thin1 of=/tmp/t.lv bs=1M count=32 2>/dev/null
# lvcreate -s asks for the snapshot target even for a thin snapshot; the guest has no
# /sbin/modprobe for LVM2 to load it.
modprobe dm-snapshot
check "real lvcreate -s thin snapshot" lvcreate -y -s -n snap1 vgdrop/thin1
check "real lvchange -ay -K of the snapshot" lvchange -ay -K vgdrop/snap1
check "the snapshot reads the origin's data" same_bytes /dev/vgdrop/snap1 /tmp/t.lv $((32 << 20))
check_eq "lvs Data% of the pool as its status says" \
	"$(dmsetup status vgdrop-pool-tpool | awk '{ split($6, d, "/"); printf "%.2f", 100 * d[1] / d[2] }')" \
	"$(lvs --noheadings -o data_percent vgdrop/pool | tr -d ' ')"
check "real vgchange -an, then -ay (thin_check on our metadata)" sh -c "vgchange -an vgdrop >/dev/null && vgchange -ay vgdrop >/dev/null"
check "the thin volume reads back after reactivation" same_bytes /dev/vgdrop/thin1 /tmp/t.lv $((32 << 20))
check "real lvextend of the pool (online resize on ours)" lvextend -y -L +16M vgdrop/pool
check_eq "the pool reports the new size" 1024 \
	"$(dmsetup status vgdrop-pool-tpool | awk '{ split($6, d, "/"); print d[2] }')"
meta_before=$(dmsetup status vgdrop-pool-tpool | awk '{ split($5, m, "/"); print m[2] }')
check "real lvextend --poolmetadatasize (metadata device grown online)" \
	lvextend -y --poolmetadatasize +4M vgdrop/pool
check_eq "the pool reports 1024 more metadata blocks" $((meta_before + 1024)) \
	"$(dmsetup status vgdrop-pool-tpool | awk '{ split($5, m, "/"); print m[2] }')"
# Discards through LVM2 (passdown, its default): a thin volume's own blocks go back to the
# pool; blocks a snapshot shares stay, and the snapshot keeps its data.
check "real lvcreate of a second thin volume" lvcreate -y -V 32M -T vgdrop/pool -n thin2
dd if=/dev/urandom of=/dev/vgdrop/thin2 bs=64k count=128 oflag=direct 2>/dev/null
used_before=$(dmsetup status vgdrop-pool-tpool | awk '{ split($6, d, "/"); print d[1] }')
check "blkdiscard of an LVM thin volume" blkdiscard /dev/vgdrop/thin2
used_after=$(dmsetup status vgdrop-pool-tpool | awk '{ split($6, d, "/"); print d[1] }')
check_eq "... its 128 blocks went back to the pool" 128 $((used_before - used_after))
check "blkdiscard of the snapshotted thin volume" blkdiscard /dev/vgdrop/thin1
lvchange -ay -K vgdrop/snap1
check "... the snapshot still reads the origin's old data" same_bytes /dev/vgdrop/snap1 /tmp/t.lv $((32 << 20))
check_eq "... and the shared blocks stayed in the pool" "$used_after" \
	"$(dmsetup status vgdrop-pool-tpool | awk '{ split($6, d, "/"); print d[1] }')"
# A full pool: writes wait (queue_if_no_space), real lvextend of the pool lets them finish.
check "real lvcreate of a small pool and a bigger thin volume" sh -c \
	"lvcreate -y --type thin-pool -L 8M -n small vgdrop >/dev/null && lvcreate -y -V 32M -T vgdrop/small -n big >/dev/null"
head -c $((16 << 20)) /dev/urandom >/tmp/t.big
dd if=/tmp/t.big of=/dev/vgdrop/big bs=64k oflag=direct 2>/tmp/t.bigdd &
ddpid=$!
sleep 3
check_eq "writes to the full pool wait (queue_if_no_space)" out_of_data_space \
	"$(dmsetup status vgdrop-small-tpool | cut -d' ' -f8)"
check "real lvextend of the full pool" lvextend -y -L +16M vgdrop/small
wait $ddpid
check_eq "... the waiting writes finished" 0 "$?"
check "... with the data they carried" same_bytes /dev/vgdrop/big /tmp/t.big $((16 << 20))
check "real lvremove and vgremove" sh -c "lvremove -y vgdrop >/dev/null && vgremove -y vgdrop >/dev/null"
check_fails "the C thin-pool module was never loaded again" grep -q '^dm_thin_pool ' /proc/modules
unload_orion
