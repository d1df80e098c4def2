# thin-pool and thin: what the I/O pipeline guarantees, ours beside C driven the same way:
# flushes and FUA writes commit the mappings they depend on, the periodic commit, read_only
# never formats, and racing reads, writes and snapshots never expose a block's old contents.

modprobe dm-thin-pool || die "modprobe dm-thin-pool failed"
load_orion orion-
ramdisks 4 64
thin_pair

# fresh S [FEATURES]: a new pool t.Spool on blank metadata with thin device 1 (64 MiB).
fresh() {
	dd if=/dev/zero of="$(meta_for "$1")" bs=4k count=1 conv=notrunc 2>/dev/null
	dm_create t.$1pool "0 $plen $(prefix_for "$1")thin-pool $(meta_for "$1") $(data_for "$1") 128 16 ${2:-}"
	dmsetup message t.$1pool 0 "create_thin 1"
	dm_create t.${1}1 "0 131072 $(prefix_for "$1")thin /dev/mapper/t.$1pool 1"
}

# committed_blocks S: data blocks mapped for device 1 in the metadata on disk (the last
# commit): thin_dump of a copy (it refuses live metadata), read past the page cache.
committed_blocks() {
	dd if="$(meta_for "$1")" of=/tmp/t.md bs=1M iflag=direct 2>/dev/null
	thin_dump /tmp/t.md 2>/dev/null | awk '
		/<device dev_id="1"/ { on = 1 }
		/<\/device>/ { on = 0 }
		on && /single_mapping/ { n++ }
		on && /range_mapping/ { match($0, /length="[0-9]+"/); n += substr($0, RSTART + 8, RLENGTH - 9) }
		END { print n + 0 }'
}

teardown() { dmsetup remove t.${1}1 t.$1pool; }

# read_only on a blank metadata device: refused, nothing written.
for s in o c; do
	dd if=/dev/zero of="$(meta_for $s)" bs=1M count=1 2>/dev/null
	dmesg -c >/dev/null
	dmsetup create t.ro --table "0 $plen $(prefix_for $s)thin-pool $(meta_for $s) $(data_for $s) 128 16 1 read_only" \
		>/tmp/t.ro.$s 2>&1 && dmsetup remove t.ro
	dmesg | grep -o 'thin-pool: Error creating metadata object ([-0-9]*)' >>/tmp/t.ro.$s
done
check_eq "read_only on blank metadata: refused with C's message and errno" \
	"$(cat /tmp/t.ro.c)" "$(cat /tmp/t.ro.o)"
check "read_only on blank metadata: nothing written to it" is_zero $om 0 2048

# A write that a flush (fsync) covers is committed when the flush returns; a FUA write when
# it returns; any other write within the commit period (1 s).
head -c 65536 /dev/urandom >/tmp/t.blk
for s in o c; do
	fresh $s
	dd if=/tmp/t.blk of=/dev/mapper/t.${s}1 bs=64k seek=3 oflag=direct conv=fsync 2>/dev/null
	echo "$(committed_blocks $s)" >/tmp/t.fsync.$s
	fio --name=fua --filename=/dev/mapper/t.${s}1 --rw=write --bs=4k --offset=640k --size=4k \
		--direct=1 --sync=1 --output=/dev/null >/dev/null 2>&1
	echo "$(committed_blocks $s)" >/tmp/t.fua.$s
	dd if=/tmp/t.blk of=/dev/mapper/t.${s}1 bs=64k seek=20 count=1 oflag=direct 2>/dev/null
	sleep 3
	echo "$(committed_blocks $s)" >/tmp/t.period.$s
	teardown $s
done
check_eq "fsync: the written block's mapping is committed when it returns (ours)" 1 "$(cat /tmp/t.fsync.o)"
check_eq "... and C's" 1 "$(cat /tmp/t.fsync.c)"
check_eq "O_DSYNC (FUA) write: committed when it returns (ours)" 2 "$(cat /tmp/t.fua.o)"
check_eq "... and C's" 2 "$(cat /tmp/t.fua.c)"
check_eq "a plain write is committed within the commit period (ours)" 3 "$(cat /tmp/t.period.o)"
check_eq "... and C's" 3 "$(cat /tmp/t.period.c)"

# Races: the data devices hold a marker pattern, zeroing is on; writers (4 KiB partial and
# 64 KiB whole-block, QD 32), readers and discards hit the same 4 MiB while snapshots are
# taken, so blocks are provisioned, broken out of sharing and unmapped under reads (most
# I/O to blocks already mapped takes our `map` fast path); beside them fio writes and
# verifies 8 MiB, whose blocks the snapshots share too. A reader that ever sees the
# marker has read a block through a mapping whose data was not written.
marker() { tr '\000' '\245' </dev/zero | dd of="$1" bs=1M count=64 iflag=fullblock 2>/dev/null; }

# scan_marker DEV STOPFILE OUT: reads DEV's first 4 MiB until STOPFILE exists; counts reads
# that showed the marker in OUT.
scan_marker() {
	: >"$3"
	while [ ! -e "$2" ]; do
		if dd if="$1" bs=64k count=64 iflag=direct 2>/dev/null | od -An -v -tx8 | grep -q 'a5a5a5a5a5a5a5a5'; then
			echo hit >>"$3"
		fi
	done
}

race() {
	s=$1
	dev=/dev/mapper/t.${s}1
	rm -f /tmp/t.stop
	for r in 1 2 3; do scan_marker "$dev" /tmp/t.stop /tmp/t.hits.$s.$r & done
	fio --name=small --filename="$dev" --direct=1 --rw=randwrite --bs=4k --size=4M \
		--iodepth=32 --ioengine=libaio --time_based --runtime=12 --numjobs=2 \
		--name=whole --filename="$dev" --direct=1 --rw=randwrite --bs=64k --size=4M \
		--iodepth=32 --ioengine=libaio --time_based --runtime=12 \
		--name=reads --filename="$dev" --direct=1 --rw=randread --bs=16k --size=4M \
		--iodepth=32 --ioengine=libaio --time_based --runtime=12 \
		--name=trims --filename="$dev" --direct=1 --rw=randtrim --bs=64k --size=4M \
		--ioengine=psync --time_based --runtime=12 --thinktime=20000 \
		--name=verify --filename="$dev" --direct=1 --rw=randwrite --bs=4k --offset=8M \
		--size=8M --iodepth=16 --ioengine=libaio --verify=crc32c --verify_backlog=256 \
		--verify_fatal=1 --time_based --runtime=12 \
		--output=/tmp/t.race.$s >/dev/null 2>&1 &
	fpid=$!
	for id in 2 3 4; do
		sleep 3
		dmsetup suspend t.${s}1
		dmsetup message t.${s}pool 0 "create_snap $id 1"
		dmsetup resume t.${s}1
	done
	wait $fpid
	frc=$?
	touch /tmp/t.stop
	wait
	echo "fio=$frc hits=$(cat /tmp/t.hits.$s.* | wc -l)"
}

for s in o c; do
	marker "$(data_for $s)"
	fresh $s
	race $s >/tmp/t.race-result.$s
	dd if=/dev/mapper/t.${s}1 bs=1M count=64 iflag=direct 2>/dev/null | od -An -v -tx8 |
		grep -c 'a5a5a5a5a5a5a5a5' >/tmp/t.final.$s
	dm_create t.${s}2 "0 131072 $(prefix_for $s)thin /dev/mapper/t.${s}pool 2"
	dd if=/dev/mapper/t.${s}2 bs=1M count=64 iflag=direct 2>/dev/null | od -An -v -tx8 |
		grep -c 'a5a5a5a5a5a5a5a5' >/tmp/t.final2.$s
	dmsetup remove t.${s}2
	teardown $s
	thin_check -q "$(meta_for $s)" && echo ok >/tmp/t.check.$s || echo bad >/tmp/t.check.$s
done
check_eq "race (C): fio ran and no reader saw the marker (the harness's oracle)" "fio=0 hits=0" "$(cat /tmp/t.race-result.c)"
check_eq "race (ours): fio ran and no reader saw the marker" "fio=0 hits=0" "$(cat /tmp/t.race-result.o)"
check_eq "after the race: no marker anywhere in the origin (ours)" 0 "$(cat /tmp/t.final.o)"
check_eq "... nor in the first snapshot (ours)" 0 "$(cat /tmp/t.final2.o)"
check_eq "... and none in C's either" "0 0" "$(cat /tmp/t.final.c) $(cat /tmp/t.final2.c)"
check_eq "thin_check accepts both pools' metadata after the race" "ok ok" "$(cat /tmp/t.check.o) $(cat /tmp/t.check.c)"
# Table reloads under I/O: the thin device's table, then the pool's, reloaded again and
# again while fio writes and verifies through the thin device.
fresh o
mkdir -p /tmp/t.thintab /tmp/t.pooltab
echo "0 131072 orion-thin /dev/mapper/t.opool 1" >/tmp/t.thintab/a.131072
echo "0 $plen orion-thin-pool $om $od 128 16" >/tmp/t.pooltab/a.$plen
check "fio verify through the thin device while its table is reloaded" \
	under_reloads t.o1 /tmp/t.thintab fio_verify /dev/mapper/t.o1 \
	--rw=randwrite --bs=16k --size=24M --iodepth=16 --ioengine=libaio
check "fio verify through the thin device while the pool's table is reloaded" \
	under_reloads t.opool /tmp/t.pooltab fio_verify /dev/mapper/t.o1 \
	--rw=randwrite --bs=16k --size=24M --iodepth=16 --ioengine=libaio --offset=32M
teardown o
check "thin_check accepts the metadata after the reloads" thin_check -q $om
unload_orion
