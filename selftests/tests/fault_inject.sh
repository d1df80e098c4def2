# Allocation failures (failslab and fail_page_alloc), limited by the stack-trace filter to
# allocations made with orion_dm on the stack (our code and the C helpers it calls: bufio,
# kcopyd, dm-io, workqueues, the block layer below our bios). Every constructor is run with
# its 1st, 2nd, ... allocation failing until one runs with nothing left to fail; then rounds
# of table loads, messages and I/O with random failures. Every failure must end in an error
# (refused table, failed message, I/O error), never a crash, WARN, hang or leak; the module
# then works as before and unloads. Needs a kernel with fault injection (the debug kernel);
# `make check` runs it there.

FI=/sys/kernel/debug
[ -d $FI/failslab ] || mount -t debugfs debugfs $FI 2>/dev/null
if [ ! -d $FI/failslab ] || [ ! -d $FI/fail_page_alloc ]; then
	tap_skip "allocation failures" "no failslab/fail_page_alloc in this kernel (the debug kernel runs this test)"
	return 0
fi

load_orion orion-
ramdisks 10 64
MAX_SITES=2000
# Every allocation position of each constructor in `make reliability`
# (orion.fi_exhaustive=1); in `make check`, positions 1-30, then every tenth or so.
exhaustive=$(sed -n 's/.*orion\.fi_exhaustive=\([01]\).*/\1/p' /proc/cmdline)

# The module's address range (core text and data): the stack-trace filter fails only
# allocations with a return address in it. Module addresses are 0xffffffff........; the
# shell's arithmetic is signed, so only the low half is added to.
mod_start=$(awk '$1 == "orion_dm" { print $6 }' /proc/modules)
mod_size=$(awk '$1 == "orion_dm" { print $2 }' /proc/modules)
case $mod_start in
0xffffffff????????) ;;
*) die "orion_dm's address is not readable: $mod_start" ;;
esac
mod_end=$(printf '0xffffffff%08x' $((0x${mod_start#0xffffffff} + mod_size)))
[ "${#mod_end}" = 18 ] || die "orion_dm ends past the top of the address space"

# Both allocators: sleeping allocations too, quiet (failures are counted by `times`, which
# every failure decrements), filtered to orion_dm, probability 0 until a round sets it.
TIMES=1000000
for f in failslab fail_page_alloc; do
	d=$FI/$f
	echo 0 >$d/probability
	echo "$mod_start" >$d/require-start
	echo "$mod_end" >$d/require-end
	echo 32 >$d/stacktrace-depth
	echo 0 >$d/verbose
	echo 0 >$d/space
	echo 1 >$d/interval
	echo N >$d/task-filter
	echo N >$d/ignore-gfp-wait
	echo $TIMES >$d/times
done
# mm/slub.c's sysfs_slab_add does not put the kobject whose name it set when
# kobject_init_and_add fails (a leak outside orion_dm, reached when dm-bufio creates its
# kmem_cache for our metadata client): allocations under it are not failed.
set -- $(sort /proc/kallsyms | awk '$3 == "sysfs_slab_add" { found = 1; print $1; next } found { print $1; exit }')
[ $# = 2 ] || die "sysfs_slab_add not found in /proc/kallsyms"
echo "0x$1" >$FI/failslab/reject-start
echo "0x$2" >$FI/failslab/reject-end
echo N >$FI/fail_page_alloc/ignore-gfp-highmem
echo 0 >$FI/fail_page_alloc/min-order
# injected KIND: failures injected so far by KIND.
injected() { echo $((TIMES - $(cat $FI/$1/times))); }
fi_off() {
	echo 0 >$FI/failslab/probability
	echo 0 >$FI/fail_page_alloc/probability
}

wipe() { for d in "$@"; do dd if=/dev/zero of="$d" bs=4k count=2 2>/dev/null; done; }

# The tables, one per constructor.
table_of_kind() {
	case $1 in
	linear) echo "0 16384 orion-linear /dev/ram0 0" ;;
	striped) echo "0 16384 orion-striped 2 64 /dev/ram0 32768 /dev/ram1 0" ;;
	mirror-core) echo "0 16384 orion-mirror core 1 1024 2 /dev/ram2 0 /dev/ram3 0" ;;
	mirror-disk) echo "0 16384 orion-mirror disk 2 /dev/ram4 1024 2 /dev/ram2 32768 /dev/ram3 32768" ;;
	thin-pool) echo "0 131072 orion-thin-pool /dev/ram5 /dev/ram6 128 0" ;;
	origin) echo "0 32768 orion-s-origin /dev/ram7" ;;
	snapshot) echo "0 32768 orion-snapshot /dev/ram7 /dev/ram8 P 8" ;;
	snapshot-N) echo "0 32768 orion-snapshot /dev/ram7 /dev/ram9 N 16" ;;
	esac
}

# The kernel reports a failed vmalloc or page allocation with a call trace (warn_alloc):
# between these markers the VM runner expects such reports and leaves them out.
echo "orion-selftest: allocation failures injected from here" >/dev/kmsg

# Part 1: `dmsetup create` (constructor and resume) with its k-th slab allocation made
# under orion_dm failing (the task's fail-nth, counted only past the stack-trace filter),
# k = 1, 2, ... until a run injects nothing (every position, or a sample of them: see
# `exhaustive` above). Page
# allocations (kcopyd's reserve of hundreds of pages one at a time, a run each) are left
# out here by an empty address range, and fail in the rounds of part 2.
: >/tmp/t.fi.problems
sites_total=0
echo 0x1 >$FI/fail_page_alloc/require-start
echo 0x2 >$FI/fail_page_alloc/require-end
for kind in linear striped mirror-core mirror-disk thin-pool origin snapshot snapshot-N; do
	k=1
	last=0
	runs=0
	refused=0
	t=$(table_of_kind $kind)
	while [ $k -le "$MAX_SITES" ]; do
		case $kind in
		mirror-disk) wipe /dev/ram4 ;;
		thin-pool) wipe /dev/ram5 ;;
		snapshot) wipe /dev/ram8 ;;
		esac
		before=$(($(injected failslab) + $(injected fail_page_alloc)))
		if sh -c "echo $k >/proc/self/fail-nth && exec dmsetup create fi.dev --table '$t'" \
			>/tmp/t.fi.out 2>&1; then
			created=1
		else
			created=0
		fi
		hit=$(($(injected failslab) + $(injected fail_page_alloc) - before))
		if [ $created = 1 ]; then
			dmsetup status fi.dev >/dev/null 2>&1 ||
				echo "$kind/$k: status of a created device failed" >>/tmp/t.fi.problems
			dmsetup remove fi.dev >/dev/null 2>&1 ||
				echo "$kind/$k: remove failed" >>/tmp/t.fi.problems
		else
			refused=$((refused + 1))
			if dmsetup info fi.dev >/dev/null 2>&1; then
				echo "$kind/$k: refused but the device is left" >>/tmp/t.fi.problems
				dmsetup remove fi.dev >/dev/null 2>&1
			fi
			[ $hit = 0 ] &&
				echo "$kind/$k: refused with no fault injected: $(cat /tmp/t.fi.out)" >>/tmp/t.fi.problems
		fi
		# Nothing failed: every allocation of the constructor has had its turn.
		[ $hit = 0 ] && break
		runs=$((runs + 1))
		last=$k
		if [ "${exhaustive:-0}" = 1 ] || [ $k -lt 30 ]; then
			k=$((k + 1))
		else
			k=$((k + k / 10))
		fi
	done
	sites=$last
	sites_total=$((sites_total + sites))
	[ $k -gt "$MAX_SITES" ] &&
		echo "$kind: more than $MAX_SITES allocations, not all tried" >>/tmp/t.fi.problems
	runs_total=$((runs_total + runs))
	echo "# $kind: $runs runs, each failing one of its $sites or more allocations, $refused refused"
done
check_eq "constructors: $runs_total runs, each failing one allocation ($sites_total or more in all), every failure a refused table or a working device, nothing left behind" \
	"" "$(cat /tmp/t.fi.problems)"
check "constructors: allocation failures were injected" test "$sites_total" -gt 16
# Part 1b: `dmsetup remove` of a snapshot and of a snapshot-merge (their origin live) with
# the k-th allocation of the destructor failing. A destructor cannot fail: what it cannot
# allocate it must do without, and leave nothing behind (the kmemleak checks below; a
# snapshot that could only be retired in place once kept its origin alive for ever).
dtr_runs=0
for kind in snapshot snapshot-merge; do
	k=1
	while [ $k -le 200 ]; do
		wipe /dev/ram8
		dmsetup create fi.origin --table "$(table_of_kind origin)" >/dev/null 2>&1 &&
			dmsetup create fi.snap --table "$(table_of_kind snapshot)" >/dev/null 2>&1 ||
			echo "$kind/$k: the stack could not be created" >>/tmp/t.fi.problems
		dd if=/dev/urandom of=/dev/mapper/fi.origin bs=64k count=4 oflag=direct 2>/dev/null
		if [ $kind = snapshot-merge ]; then
			dmsetup remove fi.snap >/dev/null 2>&1
			dmsetup suspend fi.origin
			dmsetup create fi.snap --table "0 32768 orion-s-merge /dev/ram7 /dev/ram8 P 8" >/dev/null 2>&1 ||
				echo "$kind/$k: the merge could not be created" >>/tmp/t.fi.problems
			dmsetup resume fi.origin
		fi
		before=$(($(injected failslab) + $(injected fail_page_alloc)))
		sh -c "echo $k >/proc/self/fail-nth && exec dmsetup remove fi.snap" >/tmp/t.fi.out 2>&1 ||
			echo "$kind/$k: remove failed: $(cat /tmp/t.fi.out)" >>/tmp/t.fi.problems
		hit=$(($(injected failslab) + $(injected fail_page_alloc) - before))
		dmsetup remove fi.snap >/dev/null 2>&1
		dmsetup remove fi.origin >/dev/null 2>&1 ||
			echo "$kind/$k: origin remove failed" >>/tmp/t.fi.problems
		[ $hit = 0 ] && break
		dtr_runs=$((dtr_runs + 1))
		k=$((k + 1))
	done
	echo "# $kind removal: $((k - 1)) runs, each failing one allocation of the destructor"
done
check_eq "destructors: snapshot and snapshot-merge removals with an allocation failing all end" \
	"" "$(cat /tmp/t.fi.problems)"
: >/tmp/t.fi.problems
echo "$mod_start" >$FI/fail_page_alloc/require-start
echo "$mod_end" >$FI/fail_page_alloc/require-end

: >/tmp/t.fi.problems

# Part 2: rounds of every target under random failures: table loads, pool messages, writes
# and reads, a merge; the errors are the callers'; everything is removed after.
# io DEV: writes and reads 64 KiB at a few places (errors allowed, hangs are not).
io() {
	for off in 0 7 100 33 250; do
		dd if=/dev/urandom of="$1" bs=64k seek=$off count=1 oflag=direct 2>/dev/null
		dd if="$1" of=/dev/null bs=64k skip=$off count=1 iflag=direct 2>/dev/null
	done
	true
}
injected_slab=0
injected_page=0
rounds=0
for p in 1 3 10 30; do
	for f in failslab fail_page_alloc; do
		rounds=$((rounds + 1))
		wipe /dev/ram4 /dev/ram5 /dev/ram8 /dev/ram9
		before=$(injected $f)
		echo $p >$FI/$f/probability
		for kind in linear striped mirror-core mirror-disk thin-pool origin snapshot; do
			dm_create fi.$kind "$(table_of_kind $kind)" >/dev/null 2>&1
		done
		if dmsetup info fi.thin-pool >/dev/null 2>&1; then
			for m in "create_thin 1" "create_thin 2" "create_snap 3 1" "reserve_metadata_snap" \
				"release_metadata_snap" "delete 2" "set_transaction_id 0 1"; do
				dmsetup message fi.thin-pool 0 "$m" >/dev/null 2>&1
			done
			dm_create fi.thin "0 32768 orion-thin /dev/mapper/fi.thin-pool 1" >/dev/null 2>&1
		fi
		for d in fi.linear fi.striped fi.mirror-core fi.mirror-disk fi.thin fi.origin fi.snapshot; do
			dmsetup info $d >/dev/null 2>&1 && io /dev/mapper/$d
		done
		if dmsetup info fi.snapshot >/dev/null 2>&1; then
			dmsetup suspend fi.origin 2>/dev/null
			printf '%s\n' "0 32768 orion-s-merge /dev/ram7 /dev/ram8 P 8" | dmsetup load fi.snapshot 2>/dev/null &&
				dmsetup resume fi.snapshot 2>/dev/null
			dmsetup resume fi.origin 2>/dev/null
			io /dev/mapper/fi.origin
		fi
		fi_off
		if [ $f = failslab ]; then
			injected_slab=$((injected_slab + $(injected $f) - before))
		else
			injected_page=$((injected_page + $(injected $f) - before))
		fi
		for d in fi.thin fi.snapshot fi.origin fi.linear fi.striped fi.mirror-core fi.mirror-disk fi.thin-pool; do
			dmsetup info $d >/dev/null 2>&1 || continue
			dmsetup status $d >/dev/null 2>&1 || echo "round $p/$f: status of $d failed" >>/tmp/t.fi.problems
			dmsetup remove $d >/dev/null 2>&1 || echo "round $p/$f: remove $d failed" >>/tmp/t.fi.problems
		done
	done
done
echo "# I/O rounds: $rounds, failslab faults $injected_slab, fail_page_alloc faults $injected_page"
check_eq "I/O rounds: every device still answers status and is removed after the faults" \
	"" "$(cat /tmp/t.fi.problems)"
check "I/O rounds: faults were injected into both allocators" \
	test "$injected_slab" -gt 0 -a "$injected_page" -gt 0

echo "orion-selftest: allocation failures injected until here" >/dev/kmsg

# Part 3: with the faults off, every target works as before (data written reads back).
wipe /dev/ram4 /dev/ram5 /dev/ram8 /dev/ram9
head -c 1048576 /dev/urandom >/tmp/t.fi.data
works() {
	dd if=/tmp/t.fi.data of="/dev/mapper/$1" bs=64k oflag=direct 2>/dev/null &&
		same_bytes /tmp/t.fi.data "/dev/mapper/$1" 1048576
}
for kind in linear striped mirror-core mirror-disk origin snapshot; do
	dm_create fi.$kind "$(table_of_kind $kind)" || die "fi.$kind after the faults"
done
dm_create fi.thin-pool "$(table_of_kind thin-pool)" || die "fi.thin-pool after the faults"
dmsetup message fi.thin-pool 0 "create_thin 1" || die "create_thin after the faults"
dm_create fi.thin "0 32768 orion-thin /dev/mapper/fi.thin-pool 1" || die "thin after the faults"
for d in linear striped mirror-core mirror-disk origin snapshot thin; do
	check "after the faults: $d writes and reads back 1 MiB" works fi.$d
done
dmsetup remove fi.thin fi.snapshot fi.origin fi.linear fi.striped fi.mirror-core fi.mirror-disk fi.thin-pool

# kmemleak (the debug kernel has it): a scan with the module still loaded (its addresses
# named in the report), then one after it is unloaded (its registries freed), find nothing.
if has_kmemleak; then
	check_eq "kmemleak: no leak after the faults (module loaded)" "" "$(kmemleak_report)"
fi
check "after the faults: the module unloads (no reference left)" rmmod orion_dm
if has_kmemleak; then
	check_eq "kmemleak: no leak after the module is unloaded" "" "$(kmemleak_report)"
fi
