#!/bin/sh
# The demo: Rust device-mapper targets under plain dmsetup, on the VM's four virtio disks.
# A linear volume over two disks and a striped volume over four, data written and verified
# through ours and through the kernel's C targets, and ext4 on the striped one.
set -e
export DM_DISABLE_UDEV=1

say() { printf '\n== %s\n' "$*"; }

say "load orion_dm (prefix=orion-, beside the kernel's own linear and striped)"
modprobe dm-bufio
insmod /lib/modules/$(uname -r)/extra/orion_dm.ko prefix=orion-
dmsetup targets | grep -E '^(orion-)?(linear|striped) '

say "vol_linear: 192 MiB, 128 MiB from vda then 64 MiB from vdb (orion-linear)"
printf '%s\n' "0 262144 orion-linear /dev/vda 2048" "262144 131072 orion-linear /dev/vdb 2048" |
	dmsetup create vol_linear
say "vol_striped: 256 MiB striped over vda-vdd in 64 KiB chunks (orion-striped)"
dmsetup create vol_striped --table \
	"0 524288 orion-striped 4 128 /dev/vda 400000 /dev/vdb 400000 /dev/vdc 400000 /dev/vdd 400000"
dmsetup ls
dmsetup table
dmsetup status
for v in vol_linear vol_striped; do
	echo "$v: $(blockdev --getsize64 /dev/mapper/$v) bytes," \
		"io_min $(blockdev --getiomin /dev/mapper/$v), io_opt $(blockdev --getioopt /dev/mapper/$v)"
done

say "write 48 MiB of random data to each volume, read it back"
head -c 50331648 /dev/urandom >/tmp/data
want=$(md5sum </tmp/data)
for v in vol_linear vol_striped; do
	dd if=/tmp/data of=/dev/mapper/$v bs=1M conv=fsync 2>/dev/null
	sync
	echo 3 >/proc/sys/vm/drop_caches
	got=$(head -c 50331648 /dev/mapper/$v | md5sum)
	echo "$v: wrote $want read $got"
	[ "$got" = "$want" ]
done

say "the same disks through the kernel's C targets read the same bytes"
dmsetup table vol_striped | sed 's/ orion-striped / striped /' | dmsetup create c_striped
got=$(head -c 50331648 /dev/mapper/c_striped | md5sum)
echo "c_striped: read $got"
[ "$got" = "$want" ]
dmsetup remove c_striped

say "ext4 on vol_striped"
mkfs.ext4 -q /dev/mapper/vol_striped
mkdir -p /mnt/vol
mount /dev/mapper/vol_striped /mnt/vol
cp /tmp/data /mnt/vol/data
sync
echo 3 >/proc/sys/vm/drop_caches
echo "file on ext4: $(md5sum </mnt/vol/data)"
[ "$(md5sum </mnt/vol/data)" = "$want" ]
df -h /mnt/vol | tail -n 1
umount /mnt/vol
e2fsck -fn /dev/mapper/vol_striped

say "grow vol_linear online to 256 MiB (suspend, load, resume)"
printf '%s\n' "0 262144 orion-linear /dev/vda 2048" "262144 262144 orion-linear /dev/vdb 2048" |
	dmsetup load vol_linear
dmsetup suspend vol_linear
dmsetup resume vol_linear
echo "vol_linear: $(blockdev --getsize64 /dev/mapper/vol_linear) bytes"
[ "$(head -c 50331648 /dev/mapper/vol_linear | md5sum)" = "$want" ]
echo "data intact after the resize"

dmsetup remove vol_linear
dmsetup remove vol_striped

say "orion-lvm: a volume group on vdc and vdd, a striped LV on our targets"
orion-lvm pvcreate -f /dev/vdc /dev/vdd
orion-lvm vgcreate demo /dev/vdc /dev/vdd
orion-lvm --target-prefix orion- lvcreate -L 128M -i 2 -I 64k -n data demo
dmsetup table demo-data
mkfs.ext4 -q /dev/demo/data
mount /dev/demo/data /mnt/vol
cp /tmp/data /mnt/vol/data
umount /mnt/vol
say "grow it online to 256 MiB with orion-lvm lvextend"
orion-lvm --target-prefix orion- lvextend -L +128M demo/data
e2fsck -fp /dev/demo/data >/dev/null
resize2fs -p /dev/demo/data >/dev/null 2>&1
mount /dev/demo/data /mnt/vol
echo "file after the resize: $(md5sum </mnt/vol/data)"
[ "$(md5sum </mnt/vol/data)" = "$want" ]
df -h /mnt/vol | tail -n 1
umount /mnt/vol
orion-lvm lvs
orion-lvm vgchange -an demo
say "real LVM2 reads the same volume group"
lvs -o lv_name,vg_name,lv_size,stripes,stripe_size,devices demo
orion-lvm vgremove -f demo
rmmod orion_dm
say "DEMO OK: linear and striped volumes created with dmsetup and orion-lvm, data written and verified"
