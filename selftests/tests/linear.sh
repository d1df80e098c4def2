# linear: orion-linear against the C linear target over the same devices.

load_orion orion-
ramdisks 4 64 # /dev/ram0..3, 131072 sectors each
modprobe loop

# --- One segment at an odd offset: identical table, status, limits and data. ---
dm_create t.o "0 100001 orion-linear /dev/ram0 777"
dm_create t.c "0 100001 linear /dev/ram0 777"
check_eq "table identical to C" "$(table_of t.c)" "$(table_of t.o)"
check_eq "status identical to C" "$(status_of t.c)" "$(status_of t.o)"
check "queue limits identical to C" same_limits t.o t.c
check_eq "size 100001 sectors" 100001 "$(sectors /dev/mapper/t.o)"
check_eq "dmsetup table --target shows the type" "0 100001 orion-linear 1:0 777" \
	"$(dmsetup table --target orion-linear t.o)"
check "IMA measurement of the table identical to C" same_ima t.o t.c

bytes=$((100001 * 512))
fill_random /dev/mapper/t.o "$bytes" /tmp/t.a
check "written through orion-linear, read back through linear" same_bytes /tmp/t.a /dev/mapper/t.c "$bytes"
check "and it sits at sector 777 of the device" same_region /dev/ram0 777 100001 /tmp/t.a
fill_random /dev/mapper/t.c "$bytes" /tmp/t.b
check "written through linear, read back through orion-linear" same_bytes /tmp/t.b /dev/mapper/t.o "$bytes"
check "the last odd sector reads back" same_region /dev/mapper/t.o 100000 1 /tmp/t.b 100000
dmsetup remove t.o
dmsetup remove t.c
rm -f /tmp/t.a /tmp/t.b

# --- Multi-segment table over three devices, odd lengths; I/O crosses every boundary. ---
multi="0 1001 orion-linear /dev/ram1 5
1001 30000 orion-linear /dev/ram0 0
31001 7 orion-linear /dev/ram2 123
31008 50001 orion-linear /dev/ram1 1006"
check "multi-segment table loads" dm_create t.o "$multi"
dm_create t.c "$(c_twin "$multi")"
check_eq "multi-segment table identical to C" "$(table_of t.c)" "$(table_of t.o)"
check "multi-segment queue limits identical to C" same_limits t.o t.c
fill_random /dev/mapper/t.o $((81009 * 512)) /tmp/t.a
check "multi-segment: orion writes, C reads the same" same_bytes /tmp/t.a /dev/mapper/t.c $((81009 * 512))
check "segment 3 (7 sectors) landed on ram2 at 123" same_region /dev/ram2 123 7 /tmp/t.a 31001
rand="--rw=randwrite --bsrange=512-128k --size=39M --randseed=7"
check "fio: random 512B-128k writes across boundaries verify" fio_verify /dev/mapper/t.o $rand
check "fio: the C target reads the same blocks" fio_verify /dev/mapper/t.c $rand --verify_only
dmsetup remove t.o
dmsetup remove t.c
rm -f /tmp/t.a

# --- Malformed tables: refused like C, with the same message. ---
bad_table linear "100" "no arguments"
bad_table linear "100 /dev/ram0" "one argument"
bad_table linear "100 /dev/ram0 0 extra" "three arguments"
bad_table linear "100 /dev/ram0 abc" "a non-numeric offset"
bad_table linear "100 /dev/ram0 12x" "an offset with trailing garbage"
bad_table linear "100 /dev/ram0 0x10" "a hexadecimal offset"
bad_table linear "100 /dev/ram0 1.5" "a fractional offset"
bad_table linear "100 /dev/nonexistent 0" "a missing device path"
bad_table linear "100 250:250 0" "an unknown major:minor"
bad_table linear "100 /tmp 0" "a path that is not a block device"
bad_table linear "100 /dev/ram0 131000" "a range past the end of the device"
bad_table linear "200000 /dev/ram0 0" "a length larger than the device"
bad_table linear "100 /dev/ram0 18446744073709551615" "the largest 64-bit offset" stricter
check_fails "orion-linear refuses an offset of -1" dmsetup create t.bad --table "0 100 orion-linear /dev/ram0 -1"
check_fails "orion-linear refuses an offset of 2^64" dmsetup create t.bad --table "0 100 orion-linear /dev/ram0 18446744073709551616"
check "nothing left behind by the refused tables" sh -c "! dmsetup info t.bad >/dev/null 2>&1"

# --- Suspend/reload/resume under fio load, growing and shrinking online. ---
# The device starts at 32 MiB; fio works in the first 16 MiB while the table flips between
# ours and C's, is split in two segments, grows to 64 MiB and shrinks to 20 MiB.
mkdir -p /tmp/t.tables
echo "0 65536 orion-linear /dev/ram3 0" >/tmp/t.tables/1.65536
echo "0 65536 linear /dev/ram3 0" >/tmp/t.tables/2.65536
echo "0 131072 orion-linear /dev/ram3 0" >/tmp/t.tables/3.131072
printf '0 32768 orion-linear /dev/ram3 0\n32768 32768 orion-linear /dev/ram3 32768\n' >/tmp/t.tables/4.65536
echo "0 40960 orion-linear /dev/ram3 0" >/tmp/t.tables/5.40960
dm_create t.o "$(cat /tmp/t.tables/1.65536)"
dd if=/dev/urandom of=/tmp/t.outside bs=1M count=16 2>/dev/null
dd if=/tmp/t.outside of=/dev/mapper/t.o bs=1M seek=16 conv=fsync 2>/dev/null
check "fio verify (libaio QD8, 6 s) under reloads" under_reloads t.o /tmp/t.tables \
	fio_verify /dev/mapper/t.o --ioengine=libaio --iodepth=8 --rw=randwrite --bs=4k \
	--size=16M --time_based --runtime=6 --verify_backlog=256
check "fio write-then-verify passes (10 loops) under reloads" under_reloads t.o /tmp/t.tables \
	fio_verify /dev/mapper/t.o --ioengine=libaio --iodepth=8 --rw=randwrite \
	--bsrange=4k-64k --size=16M --loops=10
dm_reload t.o "$(cat /tmp/t.tables/1.65536)"
drop_caches
check "data beyond fio's range survived shrink and grow" same_region /dev/mapper/t.o 32768 32768 /tmp/t.outside
dmsetup remove t.o
rm -rf /tmp/t.tables /tmp/t.outside

# --- ext4 on top: mkfs, write, fsck clean, and the C target sees the same files. ---
dm_create t.o "0 131000 orion-linear /dev/ram2 72"
check "mkfs.ext4 on orion-linear" mkfs.ext4 -q -F /dev/mapper/t.o
mount -t ext4 /dev/mapper/t.o /mnt
dd if=/dev/urandom of=/mnt/big bs=1M count=12 2>/dev/null
mkdir /mnt/small
i=0
while [ $i -lt 200 ]; do
	echo "file $i" >/mnt/small/$i
	i=$((i + 1))
done
sum=$(cat /mnt/big /mnt/small/* | md5sum)
umount /mnt
check "e2fsck -fn clean on orion-linear" e2fsck -fn /dev/mapper/t.o
dmsetup remove t.o
dm_create t.c "0 131000 linear /dev/ram2 72"
mount -t ext4 -o ro /dev/mapper/t.c /mnt
check_eq "the C target reads the same files" "$sum" "$(cat /mnt/big /mnt/small/* | md5sum)"
umount /mnt
dmsetup remove t.c

# --- Discards, write-zeroes and flushes reach the backing disk (virtio vda). ---
check "vda supports discard" test "$(cat /sys/block/vda/queue/discard_max_bytes)" -gt 0
dm_create t.o "0 262144 orion-linear /dev/vda 2048"
dm_create t.c "0 262144 linear /dev/vda 2048"
check_eq "discard of 16 MiB: 32768 sectors reach vda" 32768 \
	"$(stat_delta 14 vda blkdiscard -o 1M -l 16M /dev/mapper/t.o)"
check_eq "the same through C" 32768 "$(stat_delta 14 vda blkdiscard -o 1M -l 16M /dev/mapper/t.c)"
check_eq "write-zeroes of 1 MiB + 512 B: 2049 sectors written to vda" 2049 \
	"$(stat_delta 7 vda blkdiscard -z -o 512 -l 1049088 /dev/mapper/t.o)"
check "an fsync flushes vda" test "$(stat_delta 16 vda sync /dev/mapper/t.o)" -ge 1
dmsetup remove t.o
dmsetup remove t.c

# On brd, discarded pages and zeroed ranges read back as zeroes through the C target.
dm_create t.o "0 65536 orion-linear /dev/ram1 8"
dm_create t.c "0 65536 linear /dev/ram1 8"
fill_random /dev/mapper/t.o $((65536 * 512)) /tmp/t.a
blkdiscard -o 4096 -l 1M /dev/mapper/t.o
blkdiscard -z -o 2097664 -l 4608 /dev/mapper/t.o
drop_caches
check "discarded range reads zero through C" is_zero /dev/mapper/t.c 8 2048
check "zeroed range reads zero through C" is_zero /dev/mapper/t.c 4097 9
check "data before the discard intact" same_region /dev/mapper/t.c 0 8 /tmp/t.a
check "data between the ranges intact" same_region /dev/mapper/t.c 2056 2041 /tmp/t.a 2056
check "data after the zeroed range intact" same_region /dev/mapper/t.c 4106 61430 /tmp/t.a 4106
dmsetup remove t.o
dmsetup remove t.c
rm -f /tmp/t.a

# --- ioctls pass through to the underlying device, as with C linear. ---
truncate -s 16M /tmp/t.img
loop=$(losetup -f --show /tmp/t.img)
for spec in "0 32768 @ 0" "0 100 @ 8"; do
	dm_create t.o "$(echo "$spec" | sed "s|@|orion-linear $loop|")"
	dm_create t.c "$(echo "$spec" | sed "s|@|linear $loop|")"
	ours=$(busybox losetup /dev/mapper/t.o 2>&1 | sed 's|^/dev/mapper/t.o: ||')
	theirs=$(busybox losetup /dev/mapper/t.c 2>&1 | sed 's|^/dev/mapper/t.c: ||')
	check_eq "LOOP_GET_STATUS64 passes through ($spec): $ours" "$theirs" "$ours"
	dmsetup remove t.o
	dmsetup remove t.c
done
check "the loop device reported its file" sh -c "busybox losetup $loop | grep -q t.img"
losetup -d "$loop"
dm_create t.o "0 100 orion-linear /dev/ram0 0"
dm_create t.c "0 100 linear /dev/ram0 0"
check_eq "an ioctl brd lacks fails like C" \
	"$(busybox losetup /dev/mapper/t.c 2>&1 | sed 's|t.c||')" \
	"$(busybox losetup /dev/mapper/t.o 2>&1 | sed 's|t.o||')"
