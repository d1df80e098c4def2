# thin-pool when things go wrong, ours beside C: metadata that needs checking, a metadata
# device that fails writes, a data device that fails writes. Same modes, status lines, log
# lines and errors as C.

modprobe dm-thin-pool || die "modprobe dm-thin-pool failed"
modprobe dm-flakey || die "modprobe dm-flakey failed"
load_orion orion-
ramdisks 4 64
thin_pair

# log_lines S: the pool's log lines since the last dmesg -c, device names made alike.
log_lines() {
	dmesg | grep -o 'thin: [0-9]*:[0-9]*: .*' | sed 's/thin: [0-9]*:[0-9]*:/thin: POOL:/'
}

# needs_check set in the metadata (thin_restore keeps the flag): the pool comes up
# read-only, says so, maps what is mapped and refuses what would change the metadata.
cat >/tmp/t.xml <<'XML'
<superblock uuid="" time="0" transaction="1" flags="1" version="2" data_block_size="128" nr_data_blocks="1024">
  <device dev_id="1" mapped_blocks="1" transaction="0" creation_time="0" snap_time="0">
    <single_mapping origin_block="3" data_block="0" time="0"/>
  </device>
</superblock>
XML
for s in o c; do
	thin_restore -q -i /tmp/t.xml -o "$(meta_for $s)"
	dmesg -c >/dev/null
	dm_create t.${s}pool "0 $plen $(prefix_for $s)thin-pool $(meta_for $s) $(data_for $s) 128 16"
	dm_create t.${s}1 "0 65536 $(prefix_for $s)thin /dev/mapper/t.${s}pool 1"
	{
		pool_status t.${s}pool
		log_lines
		dd if=/dev/zero of=/dev/mapper/t.${s}1 bs=64k seek=3 count=1 oflag=direct 2>&1 | grep -o 'error.*'
		dd if=/dev/zero of=/dev/mapper/t.${s}1 bs=64k seek=9 count=1 oflag=direct 2>&1 | grep -o 'error.*'
		dmsetup message t.${s}pool 0 "create_thin 5" 2>&1 | grep -o 'failed.*'
		status_of t.${s}1
	} >/tmp/t.nc.$s 2>&1
	dmsetup remove t.${s}1 t.${s}pool
done
check_eq "needs_check: read-only with C's status, log, errors and refusals" \
	"$(sed 's/t\.c/t.X/g' /tmp/t.nc.c)" "$(sed 's/t\.o/t.X/g' /tmp/t.nc.o)"
check "... the status says needs_check and ro" grep -q ' ro .* needs_check ' /tmp/t.nc.o

# The metadata device starts failing writes: the commit fails, the transaction is dropped,
# needs_check is set and the pool goes read-only, as C.
for s in o c; do
	m=$(meta_for $s)
	dd if=/dev/zero of="$m" bs=4k count=1 2>/dev/null
	dm_create t.${s}meta "0 $(sectors "$m") linear $m 0"
	dm_create t.${s}pool "0 $plen $(prefix_for $s)thin-pool /dev/mapper/t.${s}meta $(data_for $s) 128 16"
	dmsetup message t.${s}pool 0 "create_thin 1"
	dm_create t.${s}1 "0 65536 $(prefix_for $s)thin /dev/mapper/t.${s}pool 1"
	dd if=/dev/urandom of=/dev/mapper/t.${s}1 bs=64k count=4 oflag=direct conv=fsync 2>/dev/null
	dm_reload t.${s}meta "0 $(sectors "$m") flakey $m 0 0 5 1 error_writes"
	dmesg -c >/dev/null
	{
		dd if=/dev/urandom of=/dev/mapper/t.${s}1 bs=64k seek=8 count=1 oflag=direct conv=fsync 2>&1 | grep -o 'error.*'
		sleep 2
		pool_status t.${s}pool
		log_lines
		dd if=/dev/mapper/t.${s}1 of=/dev/null bs=64k count=4 iflag=direct 2>&1 | grep -o 'error.*'
	} >/tmp/t.mf.$s 2>&1
	dmsetup remove t.${s}1 t.${s}pool t.${s}meta
done
check_eq "metadata write errors: same status, log lines and errors as C's" \
	"$(sed 's/t\.c/t.X/g' /tmp/t.mf.c)" "$(sed 's/t\.o/t.X/g' /tmp/t.mf.o)"
check "... the pool went read-only with needs_check" grep -q ' ro .* needs_check ' /tmp/t.mf.o

# The data device fails writes: the write that provisions fails, the pool stays writable
# and gives the block back (C keeps it allocated until the next activation: a leak that
# thin_check reports, so only ours is checked for that).
m=$om
dd if=/dev/zero of=$m bs=4k count=1 2>/dev/null
dm_create t.odata "0 $plen linear $od 0"
dm_create t.opool "0 $plen orion-thin-pool $m /dev/mapper/t.odata 128 16"
dmsetup message t.opool 0 "create_thin 1"
dm_create t.o1 "0 65536 orion-thin /dev/mapper/t.opool 1"
dd if=/dev/urandom of=/dev/mapper/t.o1 bs=64k count=4 oflag=direct 2>/dev/null
dm_reload t.odata "0 $plen flakey $od 0 0 5 1 error_writes"
check_fails "data write errors: a provisioning write fails" \
	dd if=/dev/urandom of=/dev/mapper/t.o1 bs=64k seek=8 count=1 oflag=direct
check_fails "... a partial provisioning write fails" \
	dd if=/dev/urandom of=/dev/mapper/t.o1 bs=4k seek=200 count=1 oflag=direct
check_eq "... the pool stays writable" rw "$(status_of t.opool | cut -d' ' -f8)"
check_eq "... no block stays allocated for the failed writes" "4/" \
	"$(status_of t.opool | awk '{ split($6, d, "/"); print d[1] "/" }')"
dm_reload t.odata "0 $plen linear $od 0"
check "... and it works again once the device does" \
	dd if=/dev/urandom of=/dev/mapper/t.o1 bs=64k seek=8 count=1 oflag=direct
dmsetup remove t.o1 t.opool t.odata
check "thin_check accepts our metadata after the data errors" thin_check -q $m
unload_orion
