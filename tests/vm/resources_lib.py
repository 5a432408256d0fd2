"""CPU measurements in the resource-test appliance, for tests/vm/test_resources.py (short
runs, checked) and tests/bench/cpu (longer runs, tables and a plot). Each takes a booted
harness.VM whose test channel answers."""

import math
import time

CG = "/sys/fs/cgroup/vigil"


def _usage(vm, names):
    """usage_usec of each service's cgroup (wherever its tier put it)."""
    cmd = "; ".join(f"cat $(ls -d {CG}/{n} {CG}/*/{n} {CG}/*/*/{n} 2>/dev/null | head -n 1)"
                    f"/cpu.stat | sed -n 's/^usage_usec //p'" for n in names)
    vals = vm.check(cmd).split()
    if len(vals) != len(names):
        raise AssertionError(f"cpu.stat of {names}: {vals}")
    return [int(v) for v in vals]


def weighted_shares(vm, weights, seconds=15, settle=3):
    """Starts every service of weights (name -> CPUWeight=), lets them settle, and returns
    {name: {"share": % of the CPU time they used together, "want": weight / sum}}."""
    names = list(weights)
    vm.check("vigilctl start " + " ".join(names))
    try:
        time.sleep(settle)
        t0 = _usage(vm, names)
        time.sleep(seconds)
        t1 = _usage(vm, names)
    finally:
        vm.run("vigilctl stop " + " ".join(names), timeout=120)
    used = [b - a for a, b in zip(t0, t1)]
    total = sum(used) or 1
    wsum = sum(weights.values())
    return {n: {"share": 100.0 * u / total, "want": 100.0 * weights[n] / wsum, "usec": u}
            for n, u in zip(names, used)}


def tick_run(vm, tick, hogs, ticks=640, settle=2, timeout=None, ms=2):
    """Runs the tick service (64 Hz, ms of work per tick) with the hog services busy; returns
    the lateness of each tick's completion after its deadline, in µs."""
    out = "/run/" + tick.replace(".service", ".txt")
    vm.check(f"rm -f {out}; printf 'TICKS={ticks}\\nMS={ms}\\n' > /run/vres.env")
    if timeout is None:
        timeout = 60 + ticks / 64 * 3
    try:
        if hogs:
            vm.check("vigilctl start " + " ".join(hogs))
            time.sleep(settle)
        vm.check(f"vigilctl start {tick}")
        deadline = time.monotonic() + timeout
        while True:
            time.sleep(1)
            _, n = vm.run(f"wc -l < {out} 2>/dev/null || echo 0")
            if n.strip().isdigit() and int(n) >= ticks:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"{tick}: {out} not complete after {timeout:.0f} s ({n.strip()})")
        vals = [int(x) for x in vm.check(f"cat {out}", timeout=120).split()]
    finally:
        vm.run(f"vigilctl stop {tick} " + " ".join(hogs), timeout=120)
        vm.run("rm -f /run/vres.env")
    if len(vals) != ticks:
        raise AssertionError(f"{tick}: {len(vals)} values, want {ticks}")
    return vals


def tick_rounds(vm, scenarios, rounds=3, ticks=320, progress=None, ms=2):
    """Runs each scenario (key -> (tick service, hog services)) for `ticks` ticks, round after
    round, and returns key -> the lateness of all its ticks. Interleaving spreads whatever
    else the host does over every scenario alike."""
    out = {k: [] for k in scenarios}
    for r in range(rounds):
        for key, (tick, hogs) in scenarios.items():
            out[key] += tick_run(vm, tick, hogs, ticks=ticks, ms=ms)
            if progress:
                progress(r, key, out[key])
    return out


def percentile(vals, p):
    s = sorted(vals)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def p99(vals):
    return percentile(vals, 99)


def round_p99(vals, per):
    """The median over rounds of each round's p99 (tick_rounds() keeps rounds in order): a
    round that the host's other work disturbed does not decide."""
    rounds = [p99(vals[i:i + per]) for i in range(0, len(vals), per)]
    return sorted(rounds)[len(rounds) // 2]


def describe(vals):
    return (f"n={len(vals)} p50 {percentile(vals, 50) / 1000:.2f} ms, p90 "
            f"{percentile(vals, 90) / 1000:.2f} ms, p99 {p99(vals) / 1000:.2f} ms, max "
            f"{max(vals) / 1000:.2f} ms")
