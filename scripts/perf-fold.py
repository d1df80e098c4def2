#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR MIT
"""Summarises the guest profiles of `ORION_BENCH=profile make bench`: for each workload
(samples between "#### PROFILE name: result" and "#### END", `perf script -F comm,cpu,ip,sym` with
call chains), the share of each CPU's samples by task (where the work ran), the functions by
inclusive share of all samples (self share beside), idle and the frames every kernel thread
has left out, then the direct callees of each orion_dm function above 3%.
Usage: perf-fold.py tap.log"""

import collections
import re
import sys

# Frames on every stack of a kind: they say nothing about where the time goes.
NOISE = re.compile(
    r"^(ret_from_fork(_asm)?|kthread|worker_thread|start_kernel|x86_64_start_\w+|"
    r"__noinstr_text_end|common_startup_64|cpu_startup_entry|do_idle|default_idle_call|"
    r"arch_cpu_idle|start_secondary|entry_SYSCALL_64_after_hwframe|do_syscall_64|"
    r"x64_sys_call|\[unknown\])$"
)
OURS = "8orion_dm"


def short(sym):
    """The identifiers of a Rust v0 symbol of orion_dm joined by "::" (a rough demangling:
    the path, then the trait and the method), anything else as it is."""
    m = re.match(r"^_R\w*?Cs\w+_8orion_dm(\w*)$", sym)
    if not m:
        return sym[:110]
    rest, names, i = m.group(1), [], 0
    while i < len(rest):
        # Back-references (B..._), disambiguators (s..._ after a tag) and constants (K..._)
        # carry no name.
        skip = re.match(r"B[0-9a-zA-Z]*_|K[a-z][0-9a-f]*_", rest[i:])
        if not skip and i > 0 and rest[i - 1] in "CMNXY":
            skip = re.match(r"s[0-9a-zA-Z]*_", rest[i:])
        if skip:
            i += len(skip.group())
            continue
        d = re.match(r"(\d+)([A-Za-z_])", rest[i:])
        if d:
            start = i + len(d.group(1))
            names.append(rest[start:start + int(d.group(1))])
            i = start + int(d.group(1))
        else:
            i += 1
    return ("orion_dm::" + "::".join(names))[:110]


# A sample's first line: the task's name (which may hold spaces) and "[cpu]".
HEADER = re.compile(r"^\s*(.*?)\s+\[(\d+)\]\s*$")


def profiles(path):
    """{workload: ([stack, ...], [(task, cpu), ...], [result, ...])}, each stack a list of
    symbols, innermost first; repeated runs of a workload ("#### PROFILE name: result")
    pool their samples."""
    out, name, stack = {}, None, None
    for line in open(path, encoding="utf-8", errors="replace"):
        line = line.rstrip("\r\n")
        if line.startswith("#### PROFILE "):
            name, _, result = line[len("#### PROFILE "):].partition(": ")
            stack = None
            out.setdefault(name, ([], [], []))[2].append(result)
        elif line.startswith("#### END"):
            if name and stack is not None:
                out[name][0].append(stack)
            name, stack = None, None
        elif name is None:
            continue
        elif line.startswith("\t"):
            parts = line.split(None, 1)
            if stack is not None and len(parts) == 2:
                stack.append(parts[1])
        elif line.strip():
            if stack is not None:
                out[name][0].append(stack)
            stack = []
            m = HEADER.match(line)
            out[name][1].append((m.group(1), m.group(2)) if m else (line.strip(), "?"))
    return out


def task_kind(task):
    """A kernel worker's name without its number (kworker/1:2H-name -> kworker/1:H-name)."""
    return re.sub(r"^(kworker/[u\d]+):\d+", r"\1", task)


def per_cpu(heads):
    """Each CPU's share of the samples, by task kind."""
    n = len(heads) or 1
    cpus = collections.defaultdict(collections.Counter)
    for task, cpu in heads:
        cpus[cpu][task_kind(task)] += 1
    for cpu in sorted(cpus):
        tasks = ", ".join(f"{t} {c * 100 / n:.1f}%" for t, c in cpus[cpu].most_common(5))
        print(f"  cpu{cpu}: {sum(cpus[cpu].values()) * 100 / n:.1f}% of samples: {tasks}")


def report(name, stacks, heads, results):
    n = len(stacks) or 1
    incl, self_ = collections.Counter(), collections.Counter()
    for st in stacks:
        if st:
            self_[st[0]] += 1
        for f in set(st):
            incl[f] += 1
    # Runs of equal work (the same job each time) make sample counts comparable between
    # workloads: under instruction counting a count is instructions.
    print(f"== {name}: {', '.join(results)} ({len(results)} runs): {len(stacks)} samples")
    per_cpu(heads)
    for f, c in incl.most_common():
        if c * 100 / n < 1.5:
            break
        if not NOISE.match(f):
            print(f"  {c * 100 / n:5.1f}% {self_[f] * 100 / n:5.1f}% {c:6d}  {short(f)}")
    for f, c in incl.most_common():
        if c * 100 / n < 3:
            break
        if OURS not in f:
            continue
        callees = collections.Counter()
        for st in stacks:
            # The outermost occurrence, so that recursion counts once.
            for k in range(len(st) - 1, -1, -1):
                if st[k] == f:
                    callees[short(st[k - 1]) if k > 0 else "(self)"] += 1
                    break
        print(f"  -- callees of {short(f)} ({c * 100 / n:.1f}%)")
        for g, d in callees.most_common(8):
            print(f"     {d * 100 / n:5.1f}%  {g}")
    print()


def main():
    for name, (stacks, heads, results) in profiles(sys.argv[1]).items():
        report(name, stacks, heads, results)


if __name__ == "__main__":
    main()
