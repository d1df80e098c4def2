# The kernel's C thin-pool is the oracle for orion-thin (userspace, rust/pdata): metadata
# the kernel wrote reads back through ours exactly as thin_dump shows it, and metadata
# ours restored is accepted by the kernel, which then returns the data written before.

modprobe dm-thin-pool || die "modprobe dm-thin-pool failed"
ramdisks 3 64
meta=/dev/ram0 data=/dev/ram1 meta2=/dev/ram2
dd if=/dev/zero of=$meta bs=4k count=1 2>/dev/null
pool="0 $(sectors $data) thin-pool $meta $data 128 0"
dm_create t.pool "$pool"
dmsetup message t.pool 0 "create_thin 1"
dmsetup message t.pool 0 "create_thin 2"
dm_create t.thin1 "0 65536 thin /dev/mapper/t.pool 1"
dm_create t.thin2 "0 32768 thin /dev/mapper/t.pool 2"
fill_random /dev/mapper/t.thin1 $((12 << 20)) /tmp/t.d1
dd if=/tmp/t.d1 of=/dev/mapper/t.thin2 bs=64k count=40 seek=37 conv=fsync 2>/dev/null
# A snapshot of thin 1, then writes to the origin break sharing.
dmsetup suspend t.thin1
dmsetup message t.pool 0 "create_snap 3 1"
dmsetup resume t.thin1
head -c $((2 << 20)) /dev/urandom >/tmp/t.d2
dd if=/tmp/t.d2 of=/dev/mapper/t.thin1 bs=64k seek=20 conv=fsync 2>/dev/null
dmsetup message t.pool 0 "set_transaction_id 0 7"
dmsetup message t.pool 0 "reserve_metadata_snap"

# Live pool: compare the metadata snapshot.
thin_dump -m $meta >/tmp/t.theirs-m.xml
check "orion-thin dump -m of a live pool reads" sh -c "orion-thin dump -m $meta >/tmp/t.ours-m.xml"
check "... and equals thin_dump -m" cmp /tmp/t.theirs-m.xml /tmp/t.ours-m.xml

# Snapshot data equals the origin's before the overwrite.
check_fails "origin changed after the snapshot" cmp -n $((12 << 20)) /dev/mapper/t.thin1 /tmp/t.d1
dm_create t.snap "0 65536 thin /dev/mapper/t.pool 3"
check "snapshot still holds the data before the overwrite" cmp -n $((12 << 20)) /dev/mapper/t.snap /tmp/t.d1
dd if=/dev/mapper/t.thin1 of=/tmp/t.thin1 bs=1M count=16 2>/dev/null
dd if=/dev/mapper/t.thin2 of=/tmp/t.thin2 bs=1M count=16 2>/dev/null

dmsetup message t.pool 0 "release_metadata_snap"
dmsetup remove t.snap t.thin1 t.thin2 t.pool

# Inactive metadata written by the kernel.
check "thin_check accepts the kernel's metadata" thin_check -q $meta
check "orion-thin check accepts the kernel's metadata" orion-thin check -q $meta
thin_dump $meta >/tmp/t.theirs.xml
orion-thin dump $meta >/tmp/t.ours.xml
check "orion-thin dump equals thin_dump on kernel-written metadata" cmp /tmp/t.theirs.xml /tmp/t.ours.xml
check "the dump has 3 devices, transaction 7" sh -c "grep -c '<device ' /tmp/t.ours.xml | grep -qx 3 && grep -q 'transaction=\"7\"' /tmp/t.ours.xml"
orion-thin ls $meta >/tmp/t.ls
check "orion-thin ls lists devices 1 2 3" sh -c "awk 'NR > 1 { printf \"%s \", \$1 }' /tmp/t.ls | grep -qx '1 2 3 '"

# Metadata restored by ours on another device: the kernel runs the pool on it and returns
# the same data.
check "orion-thin restore writes new metadata" orion-thin restore -i /tmp/t.ours.xml -o $meta2
check "thin_check accepts our restore" thin_check -q $meta2
dm_create t.pool2 "0 $(sectors $data) thin-pool $meta2 $data 128 0"
check "the kernel opens a pool on our metadata" dmsetup status t.pool2
dm_create t.r1 "0 65536 thin /dev/mapper/t.pool2 1"
dm_create t.r2 "0 32768 thin /dev/mapper/t.pool2 2"
dm_create t.r3 "0 65536 thin /dev/mapper/t.pool2 3"
check "thin 1 reads back through our metadata" cmp -n $((16 << 20)) /dev/mapper/t.r1 /tmp/t.thin1
check "thin 2 reads back through our metadata" cmp -n $((16 << 20)) /dev/mapper/t.r2 /tmp/t.thin2
check "the snapshot reads back through our metadata" cmp -n $((12 << 20)) /dev/mapper/t.r3 /tmp/t.d1
# The kernel provisions new blocks from our space maps without clobbering old ones.
head -c $((4 << 20)) /dev/urandom >/tmp/t.d3
dd if=/tmp/t.d3 of=/dev/mapper/t.r2 bs=64k seek=150 conv=fsync 2>/dev/null
check "new writes land through our metadata" cmp -n $((4 << 20)) -i 0:$((150 * 65536)) /tmp/t.d3 /dev/mapper/t.r2
check "old data untouched by new provisioning" cmp -n $((12 << 20)) /dev/mapper/t.r3 /tmp/t.d1
dmsetup remove t.r1 t.r2 t.r3 t.pool2
check "thin_check accepts what the kernel committed on our metadata" thin_check -q $meta2
check "orion-thin check agrees" orion-thin check -q $meta2
