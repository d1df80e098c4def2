#!/usr/bin/env bash
# The main job: boots the VM and shows linear and striped volumes working (scripts/guest/demo.sh).
exec bash "$(dirname "$0")/vm-run.sh" demo
