#!/usr/bin/env python3
"""Instruction counts and atomic read-modify-writes per call, by function, with callgrind.

    python3 benches/callgrind.py solo keyed          # KeyedGroup::call, fresh key, ready work
    python3 benches/callgrind.py solo group
    python3 benches/callgrind.py solo local-keyed    # single_flight::local::KeyedGroup::call
    python3 benches/callgrind.py solo local-group
    python3 benches/callgrind.py solo floor          # the safe floor every solo target is a ratio to
    python3 benches/callgrind.py herd keyed          # per caller of a 1,000-caller herd
    python3 benches/callgrind.py herd nodedup        # the herd harness alone, to subtract
    python3 benches/callgrind.py solo keyed floor uniflight   # several: one summary table
    python3 benches/callgrind.py solo-str keyed-siphash keyed-foldhash floor-siphash floor-foldhash
                                                     # short String keys (hasher rows only)

Builds the `profile` binary (release, line tables) into target/bench-prof, runs it under
`valgrind --tool=callgrind --dump-instr=yes` for N and 2N iterations and prints the difference
divided by N, so start-up and warm-up drop out. Costs are "self" costs: inlined code counts in the
function it was inlined into. Atomic RMWs are the executed instructions that objdump shows with a
`lock` prefix, or `xchg` with a memory operand (a std `Mutex` lock/unlock pair is two).
The two callgrind outputs stay in target/bench-prof/callgrind.MODE.IMPL.{1,2} (N and 2N), for
`callgrind_annotate --auto=yes` by source line.
Needs valgrind, objdump (binutils) and callgrind_annotate.
"""

import collections
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.path.join(ROOT, "target", "bench-prof")
BINARY = os.path.join(TARGET, "release", "profile")


def build():
    env = dict(os.environ, CARGO_PROFILE_RELEASE_DEBUG="line-tables-only", CARGO_TARGET_DIR=TARGET)
    subprocess.run(
        ["cargo", "build", "--release", "-p", "single-flight-benches", "--bin", "profile"],
        cwd=ROOT, env=env, check=True)


def run(mode, imp, n, out):
    subprocess.run(
        ["valgrind", "--tool=callgrind", "--dump-instr=yes", f"--callgrind-out-file={out}",
         BINARY, mode, imp, str(n)],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def self_cost_by_function(path):
    """callgrind_annotate's self cost per function (file splits merged)."""
    text = subprocess.run(
        ["callgrind_annotate", "--inclusive=no", "--threshold=100", "--auto=no", path],
        capture_output=True, text=True, check=True).stdout
    costs = collections.Counter()
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \([ \d.]+%\)\s+(.*?):(.*?)( \[.*\])?$", line)
        if m:
            costs[m.group(3)] += int(m.group(1).replace(",", ""))
    return costs


def instruction_costs(path):
    """Executions per (object, address), and the function of each address."""
    objects, functions = {}, {}
    obj = fn = None
    costs, owner = collections.Counter(), {}
    last, skip = 0, False
    for line in open(path):
        line = line.rstrip("\n")
        m = re.match(r"(c?)(ob|fn)=\((\d+)\)(?: (.*))?$", line)
        if m:
            table = objects if m.group(2) == "ob" else functions
            if m.group(4):
                table[m.group(3)] = m.group(4)
            if not m.group(1):
                if m.group(2) == "ob":
                    obj = table[m.group(3)]
                else:
                    fn = table[m.group(3)]
            continue
        if line.startswith("calls="):
            skip = True  # the next line is the call's inclusive cost
            continue
        if not line or line[0] not in "0123456789+-*":
            continue
        parts = line.split()
        a = parts[0]
        if a.startswith("0x"):
            addr = int(a, 16)
        elif a[0] in "+-":
            addr = last + int(a)
        elif a == "*":
            addr = last
        else:
            addr = int(a)
        last = addr
        if skip:
            skip = False
            continue
        if len(parts) >= 3:
            costs[(obj, addr)] += int(parts[2])
            owner[(obj, addr)] = fn
    return costs, owner


_atomic_cache = {}


def atomic_addresses(obj):
    if obj not in _atomic_cache:
        text = subprocess.run(["objdump", "-d", "--no-show-raw-insn", obj],
                              capture_output=True, text=True).stdout
        found = set()
        for line in text.splitlines():
            m = re.match(r"\s*([0-9a-f]+):\s+(.*)", line)
            if m and (m.group(2).startswith("lock ")
                      or (m.group(2).startswith("xchg") and "(" in m.group(2))):
                found.add(int(m.group(1), 16))
        _atomic_cache[obj] = found
    return _atomic_cache[obj]


def measure(mode, imp, detail):
    """Instructions and atomic RMWs per unit for one implementation; prints by function if
    `detail`."""
    # Per unit: a call (solo) or a caller (herd of 1,000).
    n, per = (3, 3_000) if mode == "herd" else (100_000, 100_000)
    # In this checkout's target directory, not /tmp: other checkouts may profile at the same time.
    small, large = (os.path.join(TARGET, f"callgrind.{mode}.{imp}.{i}") for i in (1, 2))
    run(mode, imp, n, small)
    run(mode, imp, 2 * n, large)

    a, b = self_cost_by_function(large), self_cost_by_function(small)
    ir = {f: (a[f] - b.get(f, 0)) / per for f in a}
    ca, owner = instruction_costs(large)
    cb, _ = instruction_costs(small)
    atomics = collections.Counter()
    for key, count in ca.items():
        obj, addr = key
        if addr in atomic_addresses(obj):
            atomics[owner[key]] += (count - cb.get(key, 0)) / per

    total = sum(ir.values())
    unit = "caller" if mode == "herd" else "call"
    print(f"{mode} {imp}: {total:.0f} instructions and {sum(atomics.values()):.1f} atomic RMWs per {unit}")
    if not detail:
        return total, sum(atomics.values())
    print(f"{'Ir':>8} {'share':>6} {'atomics':>8}  function (self cost, inlined code included)")
    names = {re.sub(r"\{\{closure\}\}", "{closure}", f) for f in ir}
    merged_ir, merged_at = collections.Counter(), collections.Counter()
    for f, v in ir.items():
        merged_ir[re.sub(r"\{\{closure\}\}", "{closure}", f)] += v
    for f, v in atomics.items():
        merged_at[re.sub(r"\{\{closure\}\}", "{closure}", f)] += v
    for f in sorted(names, key=lambda f: -merged_ir[f]):
        if merged_ir[f] < 1 and merged_at[f] < 0.05:
            continue
        print(f"{merged_ir[f]:8.0f} {100 * merged_ir[f] / total:5.1f}% {merged_at[f]:8.2f}  {f[:140]}")
    return total, sum(atomics.values())


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("solo", "solo-str", "herd"):
        print(__doc__)
        sys.exit(2)
    mode, imps = sys.argv[1], sys.argv[2:]
    build()
    rows = [(imp, *measure(mode, imp, detail=len(imps) == 1)) for imp in imps]
    if len(rows) > 1:
        # The markdown table BENCHMARKS.md quotes, with the command above it.
        print(f"\n`python3 benches/callgrind.py {mode} {' '.join(imps)}`\n")
        print(f"| {mode}: implementation | instructions | atomic RMWs |")
        print("|---|---:|---:|")
        for imp, ir, at in rows:
            print(f"| {imp} | {ir:.0f} | {at:.1f} |")


if __name__ == "__main__":
    main()
