# thin-pool out of data space, ours beside C: error_if_no_space, queue_if_no_space with the
# bios resumed by growing the pool, the no_space_timeout, and the table events (low water
# mark, mode changes) that a monitor waits for.

modprobe dm-thin-pool || die "modprobe dm-thin-pool failed"
load_orion orion-
ramdisks 4 64
thin_pair

events() { dmsetup info -c --noheadings -o events "$1"; }

# fresh S BLOCKS LOWATER [FEATURES]: pool t.Spool of BLOCKS 64 KiB blocks, thin 1 of 16 MiB.
fresh() {
	dd if=/dev/zero of="$(meta_for "$1")" bs=4k count=1 2>/dev/null
	dm_create t.$1pool "0 $(($2 * 128)) $(prefix_for "$1")thin-pool $(meta_for "$1") $(data_for "$1") 128 $3 ${4:-}"
	dmsetup message t.$1pool 0 "create_thin 1"
	dm_create t.${1}1 "0 32768 $(prefix_for "$1")thin /dev/mapper/t.$1pool 1"
}
teardown() { dmsetup remove t.${1}1 t.$1pool; }
head -c $((2 << 20)) /dev/urandom >/tmp/t.data

# error_if_no_space: a write that needs a 17th block of a 16-block pool fails with ENOSPC.
for s in o c; do
	fresh $s 16 4 "1 error_if_no_space"
	dmesg -c >/dev/null
	e0=$(events t.${s}pool)
	dd if=/tmp/t.data of=/dev/mapper/t.${s}1 bs=64k oflag=direct 2>/tmp/t.dd.$s
	echo "events: $(($(events t.${s}pool) - e0))" >>/tmp/t.dd.$s
	dmesg | grep -o 'reached low water mark for data device: sending event.' >>/tmp/t.dd.$s
	dmesg | grep -o 'switching pool to out-of-data-space (error IO) mode' >>/tmp/t.dd.$s
	pool_status t.${s}pool >/tmp/t.st.$s
	status_of t.${s}1 >>/tmp/t.st.$s
	teardown $s
done
check_eq "error_if_no_space: the write fails as C's (ENOSPC), same events and log lines" \
	"$(cat /tmp/t.dd.c)" "$(sed 's/t\.o/t.c/' /tmp/t.dd.o)"
check "... and the error is 'No space left on device'" grep -q 'No space left on device' /tmp/t.dd.o
check_eq "error_if_no_space: pool and thin status as C's" "$(cat /tmp/t.st.c)" "$(cat /tmp/t.st.o)"

# queue_if_no_space: the write waits; growing the pool lets it finish with the right data.
for s in o c; do
	fresh $s 16 4
	dd if=/tmp/t.data of=/dev/mapper/t.${s}1 bs=64k oflag=direct 2>/tmp/t.dd.$s &
	ddpid=$!
	sleep 2
	if kill -0 $ddpid 2>/dev/null; then echo waiting >/tmp/t.q.$s; else echo finished >/tmp/t.q.$s; fi
	pool_status t.${s}pool >>/tmp/t.q.$s
	dm_reload t.${s}pool "0 $((64 * 128)) $(prefix_for $s)thin-pool $(meta_for $s) $(data_for $s) 128 4"
	wait $ddpid
	echo "dd: $?" >>/tmp/t.q.$s
	pool_status t.${s}pool >>/tmp/t.q.$s
	cmp /tmp/t.data /dev/mapper/t.${s}1 -n $((2 << 20)) && echo same >>/tmp/t.q.$s
	teardown $s
done
check_eq "queue_if_no_space: the write waits, growing the pool finishes it, as C's" \
	"$(cat /tmp/t.q.c)" "$(cat /tmp/t.q.o)"
check "... the write succeeded and the data is there" grep -q '^same$' /tmp/t.q.o

# no_space_timeout: queued bios fail with ENOSPC once it passes; the status says error IO.
echo 2 >/sys/module/orion_dm/parameters/no_space_timeout
echo 2 >/sys/module/dm_thin_pool/parameters/no_space_timeout
for s in o c; do
	fresh $s 16 4
	dmesg -c >/dev/null
	dd if=/tmp/t.data of=/dev/mapper/t.${s}1 bs=64k oflag=direct 2>/tmp/t.to.$s
	dmesg | grep -o 'switching pool to out-of-data-space ([a-z]* IO) mode' >>/tmp/t.to.$s
	pool_status t.${s}pool >>/tmp/t.to.$s
	teardown $s
done
echo 60 >/sys/module/orion_dm/parameters/no_space_timeout
echo 60 >/sys/module/dm_thin_pool/parameters/no_space_timeout
check_eq "no_space_timeout: queued writes fail after it, same log lines and status as C's" \
	"$(cat /tmp/t.to.c)" "$(sed 's/t\.o/t.c/' /tmp/t.to.o)"

# The low water mark: one event when free blocks reach it, none before.
for s in o c; do
	fresh $s 64 40
	e0=$(events t.${s}pool)
	dd if=/tmp/t.data of=/dev/mapper/t.${s}1 bs=64k count=20 oflag=direct 2>/dev/null
	e1=$(events t.${s}pool)
	dd if=/tmp/t.data of=/dev/mapper/t.${s}1 bs=64k seek=20 count=10 oflag=direct 2>/dev/null
	e2=$(events t.${s}pool)
	echo "before the mark: $((e1 - e0)) after: $((e2 - e1))" >/tmp/t.lw.$s
	teardown $s
done
check_eq "low water mark: one table event when it is reached, as C's" "$(cat /tmp/t.lw.c)" "$(cat /tmp/t.lw.o)"
check_eq "... and that is one event" "before the mark: 0 after: 1" "$(cat /tmp/t.lw.o)"
# A thin device suspended without flush while its writes wait for space: the suspend
# returns (the bios go back to dm core), and after the pool grows and the thin resumes the
# writes finish.
for s in o c; do
	fresh $s 16 4
	dd if=/tmp/t.data of=/dev/mapper/t.${s}1 bs=64k oflag=direct 2>/dev/null &
	ddpid=$!
	sleep 2
	timeout 20 dmsetup suspend --noflush t.${s}1 && echo suspended >/tmp/t.nf.$s || echo "suspend failed" >/tmp/t.nf.$s
	dm_reload t.${s}pool "0 $((64 * 128)) $(prefix_for $s)thin-pool $(meta_for $s) $(data_for $s) 128 4"
	dmsetup resume t.${s}1
	wait $ddpid
	echo "dd: $?" >>/tmp/t.nf.$s
	cmp -n $((2 << 20)) /tmp/t.data /dev/mapper/t.${s}1 && echo same >>/tmp/t.nf.$s
	teardown $s
done
check_eq "noflush suspend with writes waiting for space: as C's" "$(cat /tmp/t.nf.c)" "$(cat /tmp/t.nf.o)"
check_eq "... suspended, then the writes finished with the right data" "suspended dd: 0 same" "$(cat /tmp/t.nf.o | tr '\n' ' ' | sed 's/ $//')"

# Thin devices cannot be activated while their pool is suspended.
for s in o c; do
	fresh $s 64 4
	dmsetup message t.${s}pool 0 "create_thin 2"
	dmsetup suspend t.${s}pool
	dmesg -c >/dev/null
	dmsetup create t.${s}2 --table "0 32768 $(prefix_for $s)thin /dev/mapper/t.${s}pool 2" >/dev/null 2>&1 &&
		dmsetup remove t.${s}2
	dmesg | grep -o 'thin: Unable to activate thin device while pool is suspended ([-0-9]*)' >/tmp/t.susp.$s
	dmsetup resume t.${s}pool
	teardown $s
done
check_eq "a thin device on a suspended pool: refused with C's message" "$(cat /tmp/t.susp.c)" "$(cat /tmp/t.susp.o)"
check "... (and the message is there)" grep -q 'Unable to activate' /tmp/t.susp.o

# While the pool is suspended its thin devices are too (internally): their I/O waits and
# goes on after the pool resumes, as C's.
for s in o c; do
	fresh $s 64 4
	dd if=/dev/zero of=/dev/mapper/t.${s}1 bs=64k count=1 oflag=direct 2>/dev/null
	dmsetup suspend t.${s}pool
	dd if=/tmp/t.data of=/dev/mapper/t.${s}1 bs=64k count=4 oflag=direct 2>/dev/null &
	ddpid=$!
	sleep 2
	if kill -0 $ddpid 2>/dev/null; then echo waiting >/tmp/t.ps.$s; else echo finished >/tmp/t.ps.$s; fi
	dmsetup resume t.${s}pool
	wait $ddpid
	echo "dd: $?" >>/tmp/t.ps.$s
	cmp -n $((4 << 16)) /tmp/t.data /dev/mapper/t.${s}1 && echo same >>/tmp/t.ps.$s
	teardown $s
done
check_eq "thin I/O while the pool is suspended waits for its resume, as C's" "$(cat /tmp/t.ps.c)" "$(cat /tmp/t.ps.o)"
check_eq "... and then completes with its data" "waiting dd: 0 same" "$(tr '\n' ' ' </tmp/t.ps.o | sed 's/ $//')"

# A thin table naming a device that is not a pool.
bad_table thin "32768 $od 1" "a pool device that is not a mapped device"
unload_orion
