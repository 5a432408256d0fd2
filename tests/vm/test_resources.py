"""Resource control on the real kernel (cgroup v2 in the resource-test appliance, 2 vCPUs):
controllers and limits in each leaf, what every other setting writes (and does), live
set-property changes, CPUExclusive= set live, weighted CPU shares, the game tick under the priority
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

        def read(path):
            return vm.check(f"cat {path}").strip()

        def main_pid(name):
            st = json.loads(vm.check(f"vigilctl --json status {name} || true"))
            return st["main_pid"], st["active"]

        def cpus_used(leaf, samples=30):
            """{cpu: count} of the CPU each process of the leaf last ran on, sampled every
            0.1 s, and the Cpus_allowed_list of each."""
            out = vm.check(
                f"i=0; while [ $i -lt {samples} ]; do for p in $(cat {leaf}/cgroup.procs); do "
                f"awk '{{print \"cpu\", $39}}' /proc/$p/stat; done; i=$((i+1)); sleep 0.1; "
                f"done; for p in $(cat {leaf}/cgroup.procs); do "
                f"sed -n 's/^Cpus_allowed_list:[[:space:]]*/allowed /p' /proc/$p/status; done",
                timeout=60)
            used, allowed = {}, set()
            for line in out.split("\n"):
                k, _, v = line.partition(" ")
                if k == "cpu":
                    used[v] = used.get(v, 0) + 1
                elif k == "allowed":
                    allowed.add(v)
            return used, allowed

        def knobs():
            leaf = f"{CG}/knobs.service"
            want = {"cpu.idle": "1", "cpu.max": "15000 50000", "cpuset.cpus": "1",
                    "memory.high": str(48 << 20), "io.weight": "default 300"}
            got = {f: read(f"{leaf}/{f}").split("\n")[0] for f in want}
            bad = {f: (got[f], w) for f, w in want.items() if got[f] != w}
            if bad:
                raise AssertionError("knobs.service leaf (got, want): " + json.dumps(bad))
            vm.check("vigilctl start knobs.service")
            try:
                time.sleep(2)
                used, allowed = cpus_used(leaf)
                stat0 = vm.check(f"cat /proc/uptime {leaf}/cpu.stat").split()
                time.sleep(5)
                stat1 = vm.check(f"cat /proc/uptime {leaf}/cpu.stat").split()
                warnings = vm.check("vigilctl status knobs.service | grep Warning: || true")
            finally:
                vm.run("vigilctl stop knobs.service", timeout=120)

            def val(stat, key):
                return int(stat[stat.index(key) + 1])
            share = (val(stat1, "usage_usec") - val(stat0, "usage_usec")) / 1e6 / \
                (float(stat1[0]) - float(stat0[0]))
            throttled = val(stat1, "nr_throttled")
            log(f"knobs.service: {json.dumps(got)}; ran on CPUs {used}, allowed {allowed}; "
                f"{share * 100:.1f}% of a CPU for two busy processes, nr_throttled {throttled}")
            if set(used) != {"1"} or allowed != {"1"}:
                raise AssertionError(f"AllowedCPUs=1: ran on {used}, allowed {allowed}")
            if not 0.2 <= share <= 0.4 or throttled == 0:
                raise AssertionError(f"CPUQuota=30%: {share * 100:.1f}% of a CPU, "
                                     f"nr_throttled {throttled}")
            if warnings.strip():
                raise AssertionError(f"vigilctl status warns: {warnings}")
        step(tap, vm, "resources: CPUWeight=idle, CPUQuota=30%/50ms, AllowedCPUs=1, "
             "MemoryHigh=48M, IOWeight=300 in the leaf (cpu.idle, cpu.max, cpuset.cpus, "
             "memory.high, io.weight), and two busy processes get 30% of CPU 1 only", knobs)

        def live():
            leaf = f"{CG}/live.service"
            conf = "/var/lib/vigil/state/overrides/live.service.conf"
            vm.check("vigilctl start live.service")
            time.sleep(1)
            pid, active = main_pid("live.service")
            before = (read(f"{leaf}/memory.max"), read(f"{leaf}/cpu.weight"))
            if before != (str(64 << 20), "100") or active != "active":
                raise AssertionError(f"live.service before: {before}, {active}")

            def set_live(args, files, want):
                vm.check(f"vigilctl set-property {args}")
                got = tuple(read(f"{leaf}/{f}") for f in files)
                if got != want:
                    raise AssertionError(f"set-property {args}: {files} {got}, want {want}")
                return vm.check(f"cat {conf}")

            saved = set_live("live.service MemoryMax=40M CPUWeight=250",
                             ("memory.max", "cpu.weight"), (str(40 << 20), "250"))
            if "MemoryMax=40M" not in saved or "CPUWeight=250" not in saved:
                raise AssertionError(f"{conf}:\n{saved}")
            saved2 = set_live("--runtime live.service MemoryMax=50M TasksMax=33",
                              ("memory.max", "pids.max"), (str(50 << 20), "33"))
            if saved2 != saved:
                raise AssertionError(f"--runtime changed {conf}:\n{saved2}")
            if main_pid("live.service") != (pid, "active"):
                raise AssertionError(f"live.service restarted: {main_pid('live.service')}")
            vm.check("vigilctl stop live.service", timeout=60)
            log(f"live.service: set-property reached memory.max/cpu.weight at once; {conf}: "
                + " ".join(x for x in saved.split("\n") if x and not x.startswith("#")))
        step(tap, vm, "resources: vigilctl set-property MemoryMax=40M CPUWeight=250 reaches "
             "memory.max and cpu.weight at once and is kept in the overrides file; --runtime "
             "reaches the leaf and leaves the file alone", live)

        def exclusive():
            others = [f"{CG}/w100.service", f"{CG}/tick-prio.service",
                      f"{CG}/low.tier/hog-low1.service"]
            excl = f"{CG}/excl.service"
            before = [read(f"{o}/cpuset.cpus") for o in others]
            vm.check("vigilctl start excl.service w100.service")
            try:
                vm.check("vigilctl set-property --runtime excl.service CPUExclusive=yes")
                during = [read(f"{o}/cpuset.cpus") for o in others]
                time.sleep(1)
                used, allowed = cpus_used(f"{CG}/w100.service", samples=30)
                mine, _ = cpus_used(excl, samples=10)
                knobs_warn = vm.check("vigilctl status knobs.service | grep Warning: || true")
                vm.check("vigilctl set-property --runtime excl.service CPUExclusive=no")
                after = [read(f"{o}/cpuset.cpus") for o in others]
            finally:
                vm.run("vigilctl stop excl.service w100.service", timeout=120)
            log(f"CPUExclusive=yes on CPU 1: others' cpuset.cpus {before} -> {during} -> "
                f"{after}; w100.service (2 busy processes) ran on {used}, allowed {allowed}; "
                f"excl.service ran on {mine}; knobs.service: {knobs_warn.strip()}")
            # A running leaf cannot be emptied again (ENOSPC): it gets every CPU instead.
            if any(d != "0" for d in during) or any(b != "" for b in before) or \
                    after not in (["", "", ""], ["0-1", "", ""]):
                raise AssertionError(f"cpuset.cpus of others: {before} -> {during} -> {after}")
            if set(used) != {"0"} or allowed != {"0"}:
                raise AssertionError(f"a busy service ran on the reserved CPU: {used} {allowed}")
            if set(mine) != {"1"}:
                raise AssertionError(f"excl.service ran on {mine}")
            if "CPUExclusive= of other services leaves no CPU" not in knobs_warn:
                raise AssertionError("knobs.service (AllowedCPUs=1 only) is not warned that "
                                     f"CPU 1 is reserved: {knobs_warn!r}")
        step(tap, vm, "resources: CPUExclusive=yes set live keeps every other service's "
             "cpuset.cpus off CPU 1 (a busy one never runs there) and gives it back when unset",
             exclusive)

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

        def partition_probe():
            # What Linux 6.1 answers to the cpuset partitions a reserved CPU would need (see
            # policies/README.md, CPUExclusive=): logged for the record; the check is only
            # that everything is put back.
            cmds = [
                "uname -r; cat /proc/1/cgroup; wc -l < /sys/fs/cgroup/cgroup.procs",
                f"cat {CG}/cpuset.cpus.partition {CG}/cpuset.cpus.effective",
                f"echo 0-1 > {CG}/cpuset.cpus; echo root > {CG}/cpuset.cpus.partition; "
                f"cat {CG}/cpuset.cpus.partition",
                f"echo member > {CG}/cpuset.cpus.partition; echo 1 > {CG}/cpuset.cpus; "
                f"echo root > {CG}/cpuset.cpus.partition; cat {CG}/cpuset.cpus.partition "
                f"{CG}/cpuset.cpus.effective",
                f"echo member > {CG}/cpuset.cpus.partition; echo 0-1 > {CG}/cpuset.cpus; "
                f"cat {CG}/cpuset.cpus.partition {CG}/cpuset.cpus.effective",
                "mkdir /sys/fs/cgroup/probe.reserved && echo 1 > "
                "/sys/fs/cgroup/probe.reserved/cpuset.cpus && echo root > "
                "/sys/fs/cgroup/probe.reserved/cpuset.cpus.partition; "
                "cat /sys/fs/cgroup/probe.reserved/cpuset.cpus.partition "
                f"/sys/fs/cgroup/cpuset.cpus.effective {CG}/cpuset.cpus.effective "
                f"{CG}/w100.service/cpuset.cpus.effective",
                "echo member > /sys/fs/cgroup/probe.reserved/cpuset.cpus.partition; "
                "rmdir /sys/fs/cgroup/probe.reserved; "
                f"cat /sys/fs/cgroup/cpuset.cpus.effective {CG}/cpuset.cpus.effective",
            ]
            for c in cmds:
                status, out = vm.run(c)
                log(f"partition probe: {c}\n  -> exit {status}: "
                    + " | ".join(x for x in out.strip().split("\n")))
            back = (read(f"{CG}/cpuset.cpus.partition"), read(f"{CG}/cpuset.cpus.effective"))
            if back != ("member", "0-1"):
                raise AssertionError(f"vigil's cgroup not restored: {back}")
        step(tap, vm, "resources: cpuset partition probe (the kernel's answers are logged)",
             partition_probe)

        step(tap, vm, "resources: clean poweroff",
             lambda: log(f"powered off in {vm.poweroff():.1f} s"))
