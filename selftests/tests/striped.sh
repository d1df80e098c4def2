# striped: orion-striped against the C striped target over the same devices.

load_orion orion-
ramdisks 8 32 # /dev/ram0..7, 65536 sectors each

# striped_table TYPE STRIPES CHUNK LEN: a table over ram0.. with a different odd offset on
# each stripe.
striped_table() {
	t="0 $4 $1 $2 $3"
	i=0
	while [ "$i" -lt "$2" ]; do
		t="$t /dev/ram$i $((i * 13 + 3))"
		i=$((i + 1))
	done
	echo "$t"
}

# --- 1 to 8 stripes, chunk sizes 8, 16, 24 (not a power of two), 128 and 1024 sectors. ---
for stripes in 1 2 3 4 5 6 7 8; do
	for chunk in 8 16 24 128 1024; do
		row=$((stripes * chunk))
		len=$(((12288 + row - 1) / row * row))
		dm_create t.o "$(striped_table orion-striped $stripes $chunk $len)"
		dm_create t.c "$(striped_table striped $stripes $chunk $len)"
		what="$stripes stripes, chunk $chunk"
		check_eq "$what: table and status identical to C" \
			"$(table_of t.c; status_of t.c)" "$(table_of t.o; status_of t.o)"
		check "$what: queue limits identical to C" same_limits t.o t.c
		fill_random /dev/mapper/t.o $((len * 512)) /tmp/t.a
		check "$what: written through orion-striped, read back through striped" \
			same_bytes /tmp/t.a /dev/mapper/t.c $((len * 512))
		dmsetup remove t.o
		dmsetup remove t.c
	done
done
rm -f /tmp/t.a

# The layout itself, computed independently: 3 stripes of 24 sectors.
dm_create t.o "$(striped_table orion-striped 3 24 7200)"
fill_random /dev/mapper/t.o $((7200 * 512)) /tmp/t.a
ok=yes
for chunk in 0 1 2 3 4 5 47 99 100 299; do
	stripe=$((chunk % 3))
	dev_sector=$((chunk / 3 * 24 + stripe * 13 + 3))
	same_region /dev/ram$stripe $dev_sector 24 /tmp/t.a $((chunk * 24)) || ok="no (chunk $chunk)"
done
check_eq "chunk n lands on stripe n mod 3 at row n / 3" yes "$ok"
check_eq "io_min is the chunk size" 12288 "$(cat /sys/block/$(dm_kname t.o)/queue/minimum_io_size)"
check_eq "io_opt is chunk size x stripes" 36864 "$(cat /sys/block/$(dm_kname t.o)/queue/optimal_io_size)"
check_eq "chunk_sectors is the chunk size" 24 "$(cat /sys/block/$(dm_kname t.o)/queue/chunk_sectors)"
dm_create t.c "$(striped_table striped 3 24 7200)"
check "IMA measurement of the table identical to C" same_ima t.o t.c
dmsetup remove t.c

# Random I/O of 512 B to 256 KiB crossing chunk boundaries, checked through C.
rand="--rw=randwrite --bsrange=512-256k --size=3M --randseed=11"
check "fio: random writes across chunk boundaries verify" fio_verify /dev/mapper/t.o $rand
dm_create t.c "$(striped_table striped 3 24 7200)"
check "fio: the C target reads the same blocks" fio_verify /dev/mapper/t.c $rand --verify_only
dmsetup remove t.o
dmsetup remove t.c
rm -f /tmp/t.a

# A multi-segment table mixing striped and linear.
multi="0 4096 orion-striped 2 64 /dev/ram0 0 /dev/ram1 0
4096 1000 orion-linear /dev/ram2 0
5096 6144 orion-striped 3 8 /dev/ram3 5 /dev/ram4 6 /dev/ram5 7"
dm_create t.o "$multi"
dm_create t.c "$(c_twin "$multi")"
check_eq "multi-segment table identical to C" "$(table_of t.c)" "$(table_of t.o | sed 's/ orion-/ /g')"
fill_random /dev/mapper/t.o $((11240 * 512)) /tmp/t.a
check "multi-segment: orion writes, C reads the same" same_bytes /tmp/t.a /dev/mapper/t.c $((11240 * 512))
dmsetup remove t.o
dmsetup remove t.c
rm -f /tmp/t.a

# --- Malformed tables: refused like C, with the same message. ---
bad_table striped "100" "no arguments"
bad_table striped "100 2" "one argument"
bad_table striped "128 0 8 /dev/ram0 0" "zero stripes"
bad_table striped "128 x 8 /dev/ram0 0" "a non-numeric stripe count"
bad_table striped "128 4294967296 8 /dev/ram0 0" "a stripe count over 32 bits"
bad_table striped "128 -1 8 /dev/ram0 0" "a negative stripe count"
bad_table striped "128 1 0 /dev/ram0 0" "a zero chunk size"
bad_table striped "128 1 abc /dev/ram0 0" "a non-numeric chunk size"
bad_table striped "128 1 8k /dev/ram0 0" "a chunk size with a unit"
bad_table striped "129 2 8 /dev/ram0 0 /dev/ram1 0" "a length not divisible by the stripes"
bad_table striped "100 2 8 /dev/ram0 0 /dev/ram1 0" "a stripe width not divisible by the chunk"
bad_table striped "128 2 8 /dev/ram0 0" "a missing destination"
bad_table striped "128 2 8 /dev/ram0 0 /dev/ram1" "a destination without offset"
bad_table striped "128 2 8 /dev/ram0 0 /dev/ram1 0 /dev/ram2 0" "an extra destination"
bad_table striped "128 2 8 /dev/ram0 0 /dev/nonexistent 0" "a missing device"
bad_table striped "128 2 8 /dev/ram0 0 /dev/ram1 zz" "a non-numeric offset"
bad_table striped "128 2 8 /dev/ram0 0 /dev/ram1 65500" "a stripe past the end of its device"
bad_table striped "128 2 8 /dev/ram0 0 /dev/ram1 18446744073709551615" "the largest 64-bit offset" stricter
check "nothing left behind by the refused tables" sh -c "! dmsetup info t.bad >/dev/null 2>&1"

# --- Suspend/reload/resume under fio load, growing and shrinking online. ---
mkdir -p /tmp/t.tables
echo "0 65536 orion-striped 2 128 /dev/ram6 0 /dev/ram7 0" >/tmp/t.tables/1.65536
echo "0 65536 striped 2 128 /dev/ram6 0 /dev/ram7 0" >/tmp/t.tables/2.65536
echo "0 131072 orion-striped 2 128 /dev/ram6 0 /dev/ram7 0" >/tmp/t.tables/3.131072
printf '%s\n' "0 32768 orion-striped 2 128 /dev/ram6 0 /dev/ram7 0" \
	"32768 32768 orion-striped 2 128 /dev/ram6 16384 /dev/ram7 16384" >/tmp/t.tables/4.65536
echo "0 40960 orion-striped 2 128 /dev/ram6 0 /dev/ram7 0" >/tmp/t.tables/5.40960
dm_create t.o "$(cat /tmp/t.tables/1.65536)"
dd if=/dev/urandom of=/tmp/t.outside bs=1M count=16 2>/dev/null
dd if=/tmp/t.outside of=/dev/mapper/t.o bs=1M seek=16 conv=fsync 2>/dev/null
check "fio verify (libaio QD8, 6 s) under reloads" under_reloads t.o /tmp/t.tables \
	fio_verify /dev/mapper/t.o --ioengine=libaio --iodepth=8 --rw=randwrite --bsrange=4k-128k \
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
ext4="0 131072 orion-striped 4 16 /dev/ram0 0 /dev/ram1 0 /dev/ram2 0 /dev/ram3 0"
dm_create t.o "$ext4"
check "mkfs.ext4 on orion-striped" mkfs.ext4 -q -F /dev/mapper/t.o
mount -t ext4 /dev/mapper/t.o /mnt
dd if=/dev/urandom of=/mnt/big bs=1M count=24 2>/dev/null
mkdir /mnt/small
i=0
while [ $i -lt 200 ]; do
	echo "file $i" >/mnt/small/$i
	i=$((i + 1))
done
sum=$(cat /mnt/big /mnt/small/* | md5sum)
umount /mnt
check "e2fsck -fn clean on orion-striped" e2fsck -fn /dev/mapper/t.o
dmsetup remove t.o
dm_create t.c "$(c_twin "$ext4")"
mount -t ext4 -o ro /dev/mapper/t.c /mnt
check_eq "the C target reads the same files" "$sum" "$(cat /mnt/big /mnt/small/* | md5sum)"
umount /mnt
dmsetup remove t.c

# --- Discards, write-zeroes and flushes reach every disk, split per stripe like C. ---
disks="vda vdb vdc vdd"
virt="0 524288 orion-striped 4 128 /dev/vda 2048 /dev/vdb 2048 /dev/vdc 2048 /dev/vdd 2048"
dm_create t.o "$virt"
dm_create t.c "$(c_twin "$virt")"
for range in "-o 0 -l 67108864" "-o 102400 -l 3145728" "-o 512 -l 66048" "-o 65536 -l 4096"; do
	ours=$(stat_delta 14 "$disks" blkdiscard $range /dev/mapper/t.o)
	theirs=$(stat_delta 14 "$disks" blkdiscard $range /dev/mapper/t.c)
	check_eq "discard $range: sectors per disk as C ($ours)" "$theirs" "$ours"
	bytes=${range##* }
	check_eq "discard $range: every sector reaches a disk" $((bytes / 512)) \
		"$(echo "$ours" | awk '{ print $1 + $2 + $3 + $4 }')"
	ours=$(stat_delta 7 "$disks" blkdiscard -z $range /dev/mapper/t.o)
	theirs=$(stat_delta 7 "$disks" blkdiscard -z $range /dev/mapper/t.c)
	check_eq "write-zeroes $range: sectors per disk as C ($ours)" "$theirs" "$ours"
done
flushes_every_disk() {
	stat_delta 16 "$disks" sync "$1" | awk '{ print; exit !($1 > 0 && $2 > 0 && $3 > 0 && $4 > 0) }'
}
check "an fsync through orion-striped flushes all four disks" flushes_every_disk /dev/mapper/t.o
check "an fsync through striped flushes all four disks" flushes_every_disk /dev/mapper/t.c
dmsetup remove t.o
dmsetup remove t.c

# On brd: the same data, the same discards and zeroing through ours (ram0-1) and through C
# (ram2-3) leave the same bytes on the disks.
dm_create t.o "0 98304 orion-striped 2 24 /dev/ram0 8 /dev/ram1 16"
dm_create t.c "0 98304 striped 2 24 /dev/ram2 8 /dev/ram3 16"
dd if=/dev/urandom of=/tmp/t.a bs=512 count=98304 2>/dev/null
dd if=/tmp/t.a of=/dev/mapper/t.o bs=64k conv=fsync 2>/dev/null
dd if=/tmp/t.a of=/dev/mapper/t.c bs=64k conv=fsync 2>/dev/null
for dev in t.o t.c; do
	blkdiscard -o 4096 -l 1M /dev/mapper/$dev
	blkdiscard -o 8388608 -l 12288 /dev/mapper/$dev
	blkdiscard -z -o 3000320 -l 99840 /dev/mapper/$dev
done
drop_caches
check "stripe 0 after discards identical to C's" same_region /dev/ram0 8 49152 /dev/ram2 8
check "stripe 1 after discards identical to C's" same_region /dev/ram1 16 49152 /dev/ram3 16
check "the discard freed a whole page of stripe 0 (reads zero)" is_zero /dev/ram0 16 8
check "the zeroed range reads zero" is_zero /dev/mapper/t.o 5860 195
check "the data around it is intact" same_region /dev/mapper/t.o 5800 60 /tmp/t.a 5800
dmsetup remove t.o
dmsetup remove t.c
rm -f /tmp/t.a

# --- Per-stripe health: a stripe on a device that fails I/O shows D, as in C. ---
dm_create t.err "0 65536 error"
err=$(dmsetup info -c -o major,minor --noheadings t.err)
dm_create t.o "0 1024 orion-striped 2 8 /dev/ram4 0 /dev/mapper/t.err 0"
dm_create t.c "0 1024 striped 2 8 /dev/ram4 0 /dev/mapper/t.err 0"
check_eq "both stripes alive before any error" "2 1:4 $err 1 AA" "$(status_of t.o | cut -d' ' -f4-)"
for dev in t.o t.c; do
	dd if=/dev/zero of=/dev/mapper/$dev bs=4k count=1 oflag=direct 2>/dev/null
	dd if=/dev/zero of=/dev/mapper/$dev bs=4k seek=1 count=1 oflag=direct 2>/dev/null
done
check_eq "a failed write marks the stripe D, as in C" "$(status_of t.c)" "$(status_of t.o)"
check_eq "status reads AD" "2 1:4 $err 1 AD" "$(status_of t.o | cut -d' ' -f4-)"
check "the failure raised a table event" test "$(dmsetup info -c -o events --noheadings t.o)" -ge 1
