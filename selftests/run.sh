#!/bin/sh
# Runs selftests in the guest and prints TAP. Usage: run.sh "name1 name2" | "all"
# Each tests/<name>.sh runs in its own subshell with lib.sh sourced, then the
# devices, modules and ramdisks it left are cleaned up.
. /selftests/lib.sh

want=$1
if [ -z "$want" ] || [ "$want" = all ]; then
	want=$(cd /selftests/tests && ls *.sh | sed 's/\.sh$//' | sort)
fi

echo 0 >"$TAP_COUNTER"
for t in $want; do
	f=/selftests/tests/$t.sh
	echo "# ---- $t"
	if [ ! -f "$f" ]; then
		tap_not_ok "$t: no such test"
		continue
	fi
	start=$(cut -d' ' -f1 /proc/uptime)
	( . "$f" ) || tap_not_ok "$t: test script exited with status $?"
	cleanup_all
	# Guest time per test, for keeping `make check` within CI's limit.
	echo "# ---- $t took $(awk -v s="$start" '{ printf "%d", $1 - s }' /proc/uptime) s"
done
echo "1..$(cat "$TAP_COUNTER")"
