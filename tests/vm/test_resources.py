"""Resource control on the real kernel (cgroup v2 in the resource-test appliance, 2 vCPUs):
controllers and limits in each leaf, weighted CPU shares, the game tick under the priority
policy against busy low-tier hogs (and in one tier for contrast), a fork bomb held by
TasksMax=, and an allocation OOM-killed by MemoryMax=, recorded and restarted.

The measurements are in resources_lib.py, shared with tests/bench/cpu (longer runs)."""

import json
import time

import resources_lib as rl
from harness import VM, resources_appliance_dir, log, step

CG = "/sys/fs/cgroup/vigil"
# The tick scenarios run in turn, ROUNDS times PER_ROUND ticks (5 s) each.
ROUNDS, PER_ROUND = 5, 320


def main(tap, adir):
    radir = resources_appliance_dir()
    with VM(radir, name="resources") as vm:
        step(tap, vm, "resources: the appliance boots and its test channel answers",
             lambda: log(f"test channel answers {vm.sync():.1f} s after qemu started"))

        def controllers():
            have = vm.check(f"cat {CG}/cgroup.subtree_control").split()
            missing = {"cpu", "cpuset", "memory", "pids", "io"} - set(have)
            if missing:
                raise AssertionError(f"not enabled for services: {sorted(missing)} "
                                     f"(subtree_control: {have})")
            out = vm.check("dmesg | grep -i 'controllers unavailable' || true")
            if out.strip():
                raise AssertionError(f"vigil reported missing controllers: {out}")
        step(tap, vm, "resources: cpu cpuset memory pids io enabled in vigil's subtree",
             controllers)

        def leaves():
            want = {
                f"{CG}/w700.service/cpu.weight": "700",
                f"{CG}/bomb.service/pids.max": "64",
                f"{CG}/alloc.service/memory.max": str(32 << 20),
                f"{CG}/alloc.service/memory.swap.max": "0",
                f"{CG}/tick-prio.service/cpu.weight": "1000",  # gameserver.policy: high
                f"{CG}/low.tier/cpu.idle": "1",
                f"{CG}/low.tier/hog-low1.service/cpu.weight": "100",
            }
            got = {}
            for path in want:
                got[path] = vm.check(f"cat {path}").strip()
            bad = {p: (got[p], w) for p, w in want.items() if got[p] != w}
            if bad:
                raise AssertionError("leaf values (got, want): " + json.dumps(bad, indent=1))
            # TasksMax= default: 15% of the pid space
            pid_max = int(vm.check("cat /proc/sys/kernel/pid_max"))
            threads = int(vm.check("cat /proc/sys/kernel/threads-max"))
            default = min(pid_max, threads) * 15 // 100
            have = int(vm.check(f"cat {CG}/w100.service/pids.max"))
            if have != default:
                raise AssertionError(f"default TasksMax: pids.max {have}, want {default}")
            oom = vm.check("cat /proc/1/oom_score_adj").strip()
            log(f"leaves as written; default pids.max {default}; PID 1 oom_score_adj {oom}")
        step(tap, vm, "resources: each leaf holds its unit's limits (and the tier groups)",
             leaves)

        def weighted():
            shares = rl.weighted_shares(vm, {"w100.service": 100, "w200.service": 200,
                                             "w700.service": 700}, seconds=15)
            log("weighted shares: " + ", ".join(
                f"{n} {s['share']:.1f}% (want {s['want']:.0f}%)" for n, s in shares.items()))
            bad = [n for n, s in shares.items() if abs(s["share"] - s["want"]) > 3]
            if bad:
                raise AssertionError(f"shares off by more than 3 points: {bad}")
        step(tap, vm, "resources: CPUWeight=100/200/700 busy services get 10/20/70% (+-3)",
             weighted)

        ticks = {}

        def tick_runs():
            ticks.update(rl.tick_rounds(vm, {
                "alone": ("tick-prio.service", []),
                "one tier": ("tick-flat.service", [f"hog-flat{i}.service" for i in range(1, 5)]),
                "priority": ("tick-prio.service", [f"hog-low{i}.service" for i in range(1, 5)]),
            }, rounds=ROUNDS, ticks=PER_ROUND))
            for k, v in ticks.items():
                log(f"tick {k}: {rl.describe(v)}")
            # For contrast, not a check: on Debian 12's 6.1 kernel (CFS) a tick in a cgroup of
            # its own wakes with sleeper credit and preempts same-weight hogs at once, so one
            # tier costs little here; tests/bench/README.md has the figures.
            log("median of the rounds' p99 (ms): " + ", ".join(
                f"{k} {rl.round_p99(v, PER_ROUND) / 1000:.2f}" for k, v in ticks.items()))
        step(tap, vm, "resources: 64 Hz tick (2 ms work) alone, in one tier with 4 hogs, and "
             "high tier vs 4 low-tier hogs", tick_runs)

        def tick_priority():
            # Under TCG a burst of other work on the host lands on whichever run is going:
            # a miss is measured again (alone and against the hogs, in turns), up to twice.
            # Noise only ever makes a good policy look bad, never a bad one good.
            result = dict(ticks)
            for attempt in range(3):
                alone = rl.round_p99(result["alone"], PER_ROUND)
                prio = rl.round_p99(result["priority"], PER_ROUND)
                log(f"p99 priority/alone = {prio / 1000:.2f}/{alone / 1000:.2f} ms = "
                    f"{prio / alone:.2f}x (attempt {attempt + 1})")
                if prio <= 1.2 * alone:
                    return
                if attempt < 2:
                    result = rl.tick_rounds(vm, {
                        "alone": ("tick-prio.service", []),
                        "priority": ("tick-prio.service",
                                     [f"hog-low{i}.service" for i in range(1, 5)]),
                    }, rounds=ROUNDS, ticks=PER_ROUND)
            raise AssertionError(f"p99 {prio} us against low-tier hogs is more than 1.2x "
                                 f"the uncontended {alone} us, in 3 attempts")
        step(tap, vm, "resources: tick p99 against low-tier hogs within 1.2x of uncontended "
             "(median over rounds)",
             tick_priority if ticks else lambda: False)

        def heavy_tick():
            # The 2 ms tick needs 13% of a CPU, well under an equal share, and 6.1's CFS serves
            # a sleeper that stays under its share at once: one tier costs it little. A tick
            # needing more than an equal share (9 ms per 64 Hz tick, 58% of a CPU, against an
            # equal share of 2 CPUs / 5 = 40%) shows what the tiers are for: in one tier it
            # falls further behind with every tick; in the high tier it keeps up.
            heavy = rl.tick_rounds(vm, {
                "one tier": ("tick-flat.service", [f"hog-flat{i}.service" for i in range(1, 5)]),
                "priority": ("tick-prio.service", [f"hog-low{i}.service" for i in range(1, 5)]),
            }, rounds=2, ticks=PER_ROUND, ms=9)
            flat = rl.round_p99(heavy["one tier"], PER_ROUND)
            prio = rl.round_p99(heavy["priority"], PER_ROUND)
            log(f"9 ms tick p99: one tier {flat / 1000:.1f} ms, priority {prio / 1000:.1f} ms")
            if flat < 3 * prio:
                raise AssertionError(f"a 9 ms tick in one tier (p99 {flat} us) is not clearly "
                                     f"later than in the high tier ({prio} us)")
        step(tap, vm, "resources: a tick needing more than an equal share falls behind in one "
             "tier (p99 at least 3x) and keeps up in the high tier", heavy_tick)

        def list_times(n, cmd="vigilctl list"):
            times = []
            for _ in range(n):
                out = vm.check(f"/usr/lib/vigil-test/vres timeit {cmd}")
                ms, status = out.split(" ms, exit ")
                if int(status) != 0:
                    raise AssertionError(f"vigilctl list failed: {out}")
                times.append(float(ms))
            return times

        def fork_bomb():
            quiet = list_times(3)
            vm.check("vigilctl start bomb.service")
            time.sleep(3)
            cur = int(vm.check(f"cat {CG}/bomb.service/pids.current"))
            events = vm.check(f"cat {CG}/bomb.service/pids.events").split()
            if cur > 64:
                raise AssertionError(f"pids.current {cur} > TasksMax=64")
            if int(events[events.index("max") + 1]) == 0:
                raise AssertionError("the bomb never hit pids.max: did it run?")
            times = list_times(5)
            # Starting vigilctl itself (no bus) costs most of 100 ms under TCG: what PID 1
            # answers in is the difference.
            start = list_times(5, "vigilctl --help")
            log(f"fork bomb: pids.current {cur}, vigilctl list {times} ms (before the bomb: "
                f"{quiet} ms; vigilctl --help, no bus: {start} ms)")
            vm.check("vigilctl stop bomb.service", timeout=60)
            st = json.loads(vm.run("vigilctl --json status bomb.service")[1])
            if st["active"] != "inactive" or int(vm.check(f"cat {CG}/bomb.service/pids.current")):
                raise AssertionError(f"bomb.service not stopped: {st}")
            # Medians: one slow exec under TCG is the host's doing, not PID 1's.
            median = sorted(times)[len(times) // 2]
            exec_ms = sorted(start)[len(start) // 2]
            if median - exec_ms > 100:
                raise AssertionError(f"vigilctl list took {median} ms, {median - exec_ms:.0f} ms "
                                     f"more than starting vigilctl ({exec_ms} ms): > 100")
        step(tap, vm, "resources: a fork bomb under TasksMax=64 is contained, vigil answers "
             "vigilctl list within 100 ms (beyond starting vigilctl), and stop kills it",
             fork_bomb)

        def oom():
            vm.check("vigilctl start alloc.service")
            deadline = time.monotonic() + 90
            while True:
                st = json.loads(vm.run("vigilctl --json status alloc.service")[1])
                if st["restarts"] >= 1 and st["active"] in ("active", "activating"):
                    break
                if time.monotonic() > deadline:
                    raise AssertionError(f"alloc.service not OOM-killed and restarted: {st}")
                time.sleep(0.5)
            records = vm.check("cat /var/lib/vigil/state/crash/alloc.service/*.record")
            if "Result=oom-kill" not in records:
                raise AssertionError(f"no Result=oom-kill in the crash record:\n{records}")
            kills = vm.check(f"grep oom_kill {CG}/alloc.service/memory.events").split()[1]
            log_tail = vm.check("tail -n 20 /var/log/vigil/alloc.service.log")
            if "OOM killer" not in log_tail:
                raise AssertionError(f"the service log does not mention the OOM kill:\n{log_tail}")
            vm.check("vigilctl stop alloc.service", timeout=60)
            pid1 = vm.check("cat /proc/1/comm").strip()
            vm.check("vigilctl list >/dev/null")
            log(f"alloc.service: {st['restarts']} restart(s), memory.events oom_kill {kills}, "
                f"PID 1 ({pid1}) answers")
        step(tap, vm, "resources: MemoryMax=32M vs 200 MiB: OOM-killed, Result=oom-kill "
             "recorded, restarted, PID 1 unaffected", oom)

        step(tap, vm, "resources: clean poweroff",
             lambda: log(f"powered off in {vm.poweroff():.1f} s"))
