#!/usr/bin/env bash
# Runs VM selftests: vm-test.sh [TEST...] (names of selftests/tests/*.sh; default: all).
exec bash "$(dirname "$0")/vm-run.sh" test "$@"
