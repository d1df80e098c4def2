# Drop-in as a distribution installs it (orion-dm-dkms, Documentation/packaging.md): the
# module where DKMS puts it (updates/dkms), the package's /etc/modprobe.d/orion-dm.conf, and
# kmod's modprobe as /sbin/modprobe, where the kernel and LVM2 call it (the guest otherwise
# has none). Nothing is loaded by hand: dm core's request_module("dm-<target>") and LVM2's
# own modprobe load orion_dm in place of dm-thin-pool, dm-snapshot and dm-mirror. With
# orion_dm missing the C module loads instead; without the file, C is back.

kmod=/usr/libexec/kmod
moddir=/lib/modules/$KVER
conf=/etc/modprobe.d/orion-dm.conf
dkms_ko=$moddir/updates/dkms/orion_dm.ko
hidden=/root/orion_dm.ko.hidden

# The package's files, and the guest as it was for the later tests (on any exit).
install_package() {
	mkdir -p /etc/modprobe.d "$moddir/updates/dkms"
	cp /usr/share/orion-dm/orion-dm.conf "$conf"
	# Only the DKMS copy, as on a machine that never had the checkout's build.
	mv "$ORION_KO" "$dkms_ko"
	ln -sf /bin/kmod /sbin/modprobe
	"$kmod/depmod"
}
remove_package() {
	rm -f "$conf" /sbin/modprobe
	for f in "$dkms_ko" "$hidden"; do
		if [ -f "$f" ]; then mv "$f" "$ORION_KO"; fi
	done
	rm -rf "$moddir/updates"
	"$kmod/depmod"
}
trap remove_package EXIT

# loaded MODULE...: those of the modules that lsmod lists, in the order given.
loaded() {
	lsmod | awk -v want="$*" '$1 != "Module" { have[$1] = 1 }
		END {
			n = split(want, w, " ")
			for (i = 1; i <= n; i++) if (w[i] in have) { printf "%s%s", sep, w[i]; sep = " " }
		}'
}
# unload_targets: no device, and none of the dm target modules or their helpers loaded, so
# that the next step shows what autoloading brings.
unload_targets() {
	dmsetup remove_all >/dev/null 2>&1
	for m in orion_dm dm_thin_pool dm_snapshot dm_mirror dm_persistent_data dm_bio_prison \
		dm_region_hash dm_log dm_bufio; do
		if grep -q "^$m " /proc/modules; then rmmod "$m"; fi
	done
}
note() { printf '%s\n' "$@" | sed 's/^/# /'; }

ramdisks 4 64
sz=$(sectors /dev/ram2)
unload_targets
check_eq "no target module or dm-bufio loaded to begin with (earlier tests' unloaded)" "" \
	"$(loaded orion_dm dm_thin_pool dm_snapshot dm_mirror dm_bufio)"

install_package
check_eq "depmod finds orion_dm in updates/dkms" "$dkms_ko" "$("$kmod/modinfo" -n orion_dm)"
check_eq "... with dm-bufio as its dependency" dm-bufio "$("$kmod/modinfo" -F depends orion_dm)"

# autoload NAME C_MODULE TABLE: dmsetup create with TABLE, nothing loaded before, brings
# orion_dm (and dm_bufio) and not C_MODULE, and the device holds orion_dm.
autoload() {
	check "dmsetup create of a $1 with no target module loaded" dm_create t.pkg "$3"
	check_eq "... lsmod: orion_dm and dm_bufio loaded, not $2" "dm_bufio orion_dm" \
		"$(loaded dm_bufio orion_dm "$2")"
	check "... the device holds orion_dm (lsmod's use count)" \
		test "$(lsmod | awk '$1 == "orion_dm" { print $3 }')" -ge 1
	lsmod >/tmp/t.lsmod
	dmsetup remove t.pkg
	unload_targets
}
autoload thin-pool dm_thin_pool "0 $(sectors /dev/ram1) thin-pool /dev/ram0 /dev/ram1 128 0"
note "modules after the thin-pool's autoload (the C module's own dependencies load too):" "$(cat /tmp/t.lsmod)"
autoload snapshot-origin dm_snapshot "0 $sz snapshot-origin /dev/ram2"
autoload snapshot dm_snapshot "0 $sz snapshot /dev/ram2 /dev/ram3 P 8"
autoload mirror dm_mirror "0 $sz mirror core 1 1024 2 /dev/ram2 0 /dev/ram3 0"

# Real LVM2: lvcreate finds no thin-pool target and runs /sbin/modprobe dm-thin-pool itself.
vg=vgpkg
check "real pvcreate/vgcreate" sh -c "pvcreate -y -ff /dev/ram2 /dev/ram3 >/dev/null && vgcreate $vg /dev/ram2 /dev/ram3 >/dev/null"
check "real lvcreate --type thin-pool with no target module loaded" lvcreate -y --type thin-pool -L 32M -n pool $vg
check_eq "... lsmod: orion_dm, not dm_thin_pool" "orion_dm" "$(loaded orion_dm dm_thin_pool)"
check "real lvcreate -V of a thin volume" lvcreate -y -V 64M -T $vg/pool -n thin
check_eq "the pool's table is thin-pool" thin-pool "$(dmsetup table $vg-pool-tpool | cut -d' ' -f3)"
fill_random /dev/$vg/thin $((16 << 20)) /tmp/t.data
check "data written to the thin volume reads back" same_bytes /dev/$vg/thin /tmp/t.data $((16 << 20))
check "real vgchange -an, then -ay (thin_check of the metadata orion_dm wrote)" \
	sh -c "vgchange -an $vg >/dev/null && vgchange -ay $vg >/dev/null"
check "... the data reads back after reactivation" same_bytes /dev/$vg/thin /tmp/t.data $((16 << 20))
check_eq "still no dm_thin_pool" "orion_dm" "$(loaded orion_dm dm_thin_pool)"
check "real lvremove and vgremove" sh -c "lvremove -y $vg >/dev/null && vgremove -y $vg >/dev/null"
unload_targets

# A kernel DKMS built nothing for: the install command falls back to the C module.
mv "$dkms_ko" "$hidden"
"$kmod/depmod"
check "dmsetup create of a thin-pool without orion_dm on the machine" \
	dm_create t.pkg "0 $(sectors /dev/ram1) thin-pool /dev/ram0 /dev/ram1 128 0"
check_eq "... lsmod: C's dm_thin_pool serves it" "dm_thin_pool" "$(loaded orion_dm dm_thin_pool)"
unload_targets
mv "$hidden" "$dkms_ko"
"$kmod/depmod"

# The way back: without the modprobe.d file, the same requests load C's modules.
rm "$conf"
check "dmsetup create of a thin-pool once the modprobe.d file is removed" \
	dm_create t.pkg "0 $(sectors /dev/ram1) thin-pool /dev/ram0 /dev/ram1 128 0"
check "... and of a mirror" dm_create t.pkg2 "0 $sz mirror core 1 1024 2 /dev/ram2 0 /dev/ram3 0"
check_eq "... lsmod: C's dm_thin_pool and dm_mirror, no orion_dm" "dm_thin_pool dm_mirror" \
	"$(loaded orion_dm dm_thin_pool dm_mirror)"
dmsetup remove_all
