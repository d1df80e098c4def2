# Module loading: prefix handling, skip-if-taken, refusal to unload while in use.

check "load with prefix=orion-" load_orion orion-
targets=$(dmsetup targets)
check_eq "orion-linear registered as v1.4.0 like C linear" \
	"$(echo "$targets" | awk '$1 == "linear" { print $2 }')" \
	"$(echo "$targets" | awk '$1 == "orion-linear" { print $2 }')"
check_eq "orion-striped registered as v1.6.0 like C striped" \
	"$(echo "$targets" | awk '$1 == "striped" { print $2 }')" \
	"$(echo "$targets" | awk '$1 == "orion-striped" { print $2 }')"

ramdisks 1 8
dm_create t.mod "0 1024 orion-linear /dev/ram0 0"
check_fails "rmmod refused while a device uses the module" rmmod orion_dm
check "module still loaded after refused rmmod" grep -q '^orion_dm ' /proc/modules
dmsetup remove t.mod
check "rmmod clean once no device uses it" rmmod orion_dm

# Without a prefix, linear and striped are taken by dm-mod and the others by C's modules,
# loaded here (earlier tests may have unloaded them): every name is skipped and the load
# fails, with one line per skipped target.
modprobe dm-thin-pool && modprobe dm-snapshot && modprobe dm-mirror || die "cannot load C's targets"
dmesg -c >/dev/null
check_fails "load with no prefix fails when every name is taken" insmod "$ORION_KO"
dmesg >/tmp/t.log
check "log names skipped 'linear'" grep -q "target 'linear' skipped: another module provides it" /tmp/t.log
check "log names skipped 'striped'" grep -q "target 'striped' skipped: another module provides it" /tmp/t.log
check "log says no target registered" grep -q 'no target registered' /tmp/t.log
check_fails "module not left loaded after failed load" grep -q '^orion_dm ' /proc/modules

check "load with another prefix (x-)" insmod "$ORION_KO" prefix=x-
check "x-linear and x-striped registered" sh -c "dmsetup targets | grep -q '^x-linear ' && dmsetup targets | grep -q '^x-striped '"
check "x-linear maps a device" dm_create t.x "0 1024 x-linear /dev/ram0 0"
dmsetup remove t.x
check "unload" rmmod orion_dm
check_fails "names unregistered after unload" sh -c "dmsetup targets | grep -q '^x-linear '"

# A prefix that makes the names too long for dm ioctls (16 bytes) skips them with a log line.
dmesg -c >/dev/null
check_fails "load with an overlong prefix fails" insmod "$ORION_KO" prefix=averyveryverylongprefix-
check "log explains names too long" sh -c "dmesg | grep -q 'do not fit dm ioctls'"
