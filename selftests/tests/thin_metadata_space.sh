# thin-pool metadata space, ours beside C: growing the metadata device under a live pool,
# running out of metadata space (read-only, then writable again once the device grows).

modprobe dm-thin-pool || die "modprobe dm-thin-pool failed"
load_orion orion-
ramdisks 4 64
thin_pair

pool_table() { echo "0 $plen $(prefix_for "$1")thin-pool /dev/mapper/t.$1meta $(data_for "$1") 128 16"; }
log_lines() {
	dmesg | grep -o 'thin: [0-9]*:[0-9]*: .*\|thin: No free metadata blocks' | sed 's/thin: [0-9]*:[0-9]*:/thin: POOL:/'
}

# fresh S SECTORS: a pool whose metadata is a linear device of SECTORS over the ramdisk.
fresh() {
	dd if=/dev/zero of="$(meta_for "$1")" bs=4k count=1 2>/dev/null
	dm_create t.$1meta "0 $2 linear $(meta_for "$1") 0"
	dm_create t.$1pool "$(pool_table "$1")"
	dmsetup message t.$1pool 0 "create_thin 1"
	dm_create t.${1}1 "0 131072 $(prefix_for "$1")thin /dev/mapper/t.$1pool 1"
}
teardown() { dmsetup remove t.${1}1 t.$1pool t.$1meta; }

# Growing the metadata device: the pool takes the new size at its next resume.
head -c $((8 << 20)) /dev/urandom >/tmp/t.data
for s in o c; do
	fresh $s 2048
	dd if=/tmp/t.data of=/dev/mapper/t.${s}1 bs=64k oflag=direct 2>/dev/null
	dmesg -c >/dev/null
	dm_reload t.${s}meta "0 32768 linear $(meta_for $s) 0"
	dmsetup suspend t.${s}pool
	dmsetup resume t.${s}pool
	{
		log_lines
		status_of t.${s}pool | awk '{ split($5, m, "/"); print "metadata blocks:", m[2] }'
		dd if=/tmp/t.data of=/dev/mapper/t.${s}1 bs=64k seek=200 oflag=direct 2>&1 | grep -o 'error.*'
		cmp -n $((8 << 20)) /tmp/t.data /dev/mapper/t.${s}1 && echo "data intact"
	} >/tmp/t.grow.$s
	teardown $s
	thin_check -q "$(meta_for $s)" && echo "thin_check clean" >>/tmp/t.grow.$s
done
check_eq "metadata device grown under a live pool: as C's (log, size, data, thin_check)" \
	"$(cat /tmp/t.grow.c)" "$(cat /tmp/t.grow.o)"
check "... it says so" grep -q 'growing the metadata device from 256 to 4096 blocks' /tmp/t.grow.o

# Running out of metadata space: snapshots and writes that break sharing use it up; the
# pool goes read-only with C's log line, refuses new blocks, and is writable again once
# the metadata device grows.
for s in o c; do
	fresh $s 1024
	dmesg -c >/dev/null
	i=2
	while [ $i -lt 400 ] && status_of t.${s}pool | grep -q ' rw '; do
		dmsetup message t.${s}pool 0 "create_snap $i 1" 2>/dev/null
		dd if=/tmp/t.data of=/dev/mapper/t.${s}1 bs=4k seek=$((i * 16)) count=1 oflag=direct 2>/dev/null
		i=$((i + 1))
	done
	sync
	{
		status_of t.${s}pool | cut -d' ' -f8,12
		log_lines | grep -v 'reached low water mark' | sort -u
		dd if=/tmp/t.data of=/dev/mapper/t.${s}1 bs=64k seek=900 count=1 oflag=direct 2>&1 | grep -o 'error.*'
		dm_reload t.${s}meta "0 16384 linear $(meta_for $s) 0"
		dmsetup suspend t.${s}pool
		dmsetup resume t.${s}pool
		status_of t.${s}pool | cut -d' ' -f8
		dd if=/tmp/t.data of=/dev/mapper/t.${s}1 bs=64k seek=900 count=1 oflag=direct 2>&1 | grep -o 'error.*'
	} >/tmp/t.ooms.$s 2>&1
	echo "snapshots until read-only: $i" >/tmp/t.ooms-count.$s
	dmsetup remove t.${s}1 t.${s}pool t.${s}meta
	thin_check -q "$(meta_for $s)" && echo "thin_check clean" >>/tmp/t.ooms.$s
done
check_eq "out of metadata space: read-only, refusals, then writable after growth, as C's" \
	"$(sed 's/t\.c/t.X/' /tmp/t.ooms.c)" "$(sed 's/t\.o/t.X/' /tmp/t.ooms.o)"
check "... read-only came with 'No free metadata blocks' ($(cat /tmp/t.ooms-count.o), C: $(cat /tmp/t.ooms-count.c))" \
	grep -q 'No free metadata blocks' /tmp/t.ooms.o
unload_orion
