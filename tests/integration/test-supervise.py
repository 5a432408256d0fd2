#!/usr/bin/python3
"""vigil as PID 1 of a sandbox: ordering, restart and backoff, start limits, reaping,
stop timeouts, shutdown order, many services, bad units."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from sandbox import Sandbox, Tap, read_times, require_root  # noqa: E402

require_root()
t = Tap()

# A service that records each start time, then fails at once.
CRASHER = """[Service]
ExecStart=/bin/sh -c 'date +%%%%s.%%%%N >> @WORK@/starts; exit 3'
Restart=on-failure
%s
[Install]
WantedBy=multi-user.target
"""


def deltas(times):
    return [b - a for a, b in zip(times, times[1:])]


def test_basic_order():
    units = {
        "a.service": """[Service]
Type=oneshot
ExecStart=/bin/sh -c 'sleep 0.3; echo a >> @WORK@/order'
[Install]
WantedBy=multi-user.target
""",
        "b.service": """[Unit]
After=a.service
Requires=a.service
[Service]
Type=notify
ExecStart=/usr/bin/python3 -c 'import os, socket, time; \
open("@WORK@/order", "a").write("b\\\\n"); print("hello from b", flush=True); time.sleep(0.5); \
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.connect(os.environ["NOTIFY_SOCKET"]); \
s.send(b"READY=1"); time.sleep(1000)'
""",
        "c.service": """[Unit]
Wants=b.service
After=b.service
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo c >> @WORK@/order'
[Install]
WantedBy=multi-user.target
""",
    }
    with Sandbox(units) as sb:
        sb.start()
        ok = sb.wait_for(lambda: os.path.exists(sb.work + "/order") and
                         open(sb.work + "/order").read().split() == ["a", "b", "c"], 10)
        t.ok(ok, "After= orders starts and waits for READY=1; Wants=/Requires= pull services in",
             open(sb.work + "/order").read() if os.path.exists(sb.work + "/order") else "")
        t.ok(sb.wait_for(lambda: "hello from b" in sb.service_log("b.service"), 5),
             "stdout goes to the service log", sb.service_log("b.service"))
        # A finished oneshot (and a service that exited) runs again when started.
        sb.ctl("start", "c.service", check=True)
        ok = sb.wait_for(lambda: open(sb.work + "/order").read().split() == ["a", "b", "c", "c"],
                         10)
        t.ok(ok, "start runs a finished oneshot again", open(sb.work + "/order").read())
        rc = sb.stop()
        t.ok(rc == 0, "SIGTERM stops everything and exits 0", f"exit {rc}\n{sb.output}")


def test_backoff():
    conf = """RestartSec=100ms
RestartSteps=3
RestartMaxDelaySec=800ms
StartLimitBurst=100"""
    with Sandbox({"crash.service": CRASHER % conf}) as sb:
        sb.start()
        sb.wait_for(lambda: len(read_times(sb.work + "/starts")) >= 6, 15)
        d = deltas(read_times(sb.work + "/starts"))[:5]
        want = [0.1, 0.2, 0.4, 0.8, 0.8]  # 100ms × 8^(k/3), capped at 800ms
        good = len(d) == 5 and all(w <= x <= w + 0.3 for x, w in zip(d, want))
        t.ok(good, "restart delays grow 100ms → 200ms → 400ms → 800ms, then stay",
             f"measured {['%.3f' % x for x in d]}, wanted {want}")


def test_jitter():
    conf = """RestartSec=100ms
RestartRandomizedDelaySec=300ms
StartLimitBurst=100"""
    with Sandbox({"crash.service": CRASHER % conf}) as sb:
        sb.start()
        sb.wait_for(lambda: len(read_times(sb.work + "/starts")) >= 8, 15)
        d = deltas(read_times(sb.work + "/starts"))[:7]
        spread = max(d) - min(d) if d else 0
        t.ok(len(d) == 7 and all(0.1 <= x <= 0.7 for x in d) and spread > 0.03,
             "RestartRandomizedDelaySec= adds 0..300ms of jitter",
             f"measured {['%.3f' % x for x in d]}")


def test_backoff_reset():
    # Each run lasts 0.7s, longer than RestartBackoffResetSec=500ms: the delay never grows.
    unit = """[Service]
ExecStart=/bin/sh -c 'date +%%%%s.%%%%N >> @WORK@/starts; sleep 0.7; exit 1'
Restart=on-failure
RestartSec=100ms
RestartSteps=2
RestartMaxDelaySec=2s
RestartBackoffResetSec=%s
StartLimitBurst=100
[Install]
WantedBy=multi-user.target
"""
    results = {}
    for reset in ("500ms", "1h"):
        with Sandbox({"long.service": unit % reset}) as sb:
            sb.start()
            sb.wait_for(lambda: len(read_times(sb.work + "/starts")) >= 4, 20)
            results[reset] = [x - 0.7 for x in deltas(read_times(sb.work + "/starts"))[:3]]
    fast, slow = results["500ms"], results["1h"]
    t.ok(len(fast) == 3 and all(x < 0.5 for x in fast),
         "after 0.7s of uptime (> RestartBackoffResetSec=500ms) the delay stays at RestartSec=",
         f"delays {['%.3f' % x for x in fast]}")
    t.ok(len(slow) == 3 and slow[2] > 1.5,
         "without the reset the same service backs off to RestartMaxDelaySec=",
         f"delays {['%.3f' % x for x in slow]}")


def test_start_limit_and_retry():
    unit = """[Unit]
StartLimitBurst=3
StartLimitIntervalSec=30s
StartLimitRetrySec=1500ms
[Service]
ExecStart=/bin/sh -c 'date +%%s.%%N >> @WORK@/starts; exit 3'
Restart=on-failure
RestartSec=50ms
[Install]
WantedBy=multi-user.target
"""
    with Sandbox({"crash.service": unit}) as sb:
        sb.start()
        sb.wait_for(lambda: len(read_times(sb.work + "/starts")) >= 3, 10)
        time.sleep(0.6)
        starts = read_times(sb.work + "/starts")
        t.ok(len(starts) == 3, "StartLimitBurst=3 stops the restarts after 3 starts",
             f"{len(starts)} starts")
        log = sb.service_log("crash.service")
        t.ok("Start request repeated too quickly" in log and "start-limit-hit" in log,
             "the service fails with result start-limit-hit", log)
        crash_dir = os.path.join(sb.state, "crash", "crash.service")
        records = sorted(os.listdir(crash_dir)) if os.path.isdir(crash_dir) else []
        text = open(os.path.join(crash_dir, records[0])).read() if records else ""
        history = os.path.join(sb.state, "history", "crash.service.log")
        t.ok(len(records) >= 3 and "Result=exit-code" in text and "Exit=status=3" in text and
             "Main process exited, status=3" in text and os.path.exists(history),
             "each failure leaves a crash record (result, exit, log lines) and a history line",
             f"{records}\n{text}")
        sb.wait_for(lambda: len(read_times(sb.work + "/starts")) >= 4, 5)
        starts = read_times(sb.work + "/starts")
        t.ok(len(starts) >= 4 and 1.3 <= starts[3] - starts[2] <= 2.5,
             "StartLimitRetrySec=1500ms tries again after the limit, and keeps trying",
             f"starts at {starts}")


def test_orphans():
    unit = """[Service]
ExecStart=/bin/sh -c 'i=0; while [ $i -lt 1000 ]; do (sleep 0.01 &); i=$((i+1)); done; \
echo spawned > @WORK@/done; exec sleep 1000'
[Install]
WantedBy=multi-user.target
"""
    with Sandbox({"orphans.service": unit}) as sb:
        sb.start()
        sb.wait_for(lambda: os.path.exists(sb.work + "/done"), 60)
        time.sleep(1)
        zombies = []
        for pid in sb.namespace_pids():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        zombies.append(pid)
            except OSError:
                pass
        t.ok(os.path.exists(sb.work + "/done") and not zombies,
             "1000 double-forked orphans: 0 zombies 1 s later", f"zombies: {zombies}")


def test_stop_timeout():
    unit = """[Service]
ExecStart=/bin/sh -c 'trap "" TERM; echo up > @WORK@/up; while :; do sleep 0.05; done'
TimeoutStopSec=1s
[Install]
WantedBy=multi-user.target
"""
    with Sandbox({"stubborn.service": unit}) as sb:
        sb.start()
        sb.wait_for(lambda: os.path.exists(sb.work + "/up"), 10)
        t0 = time.monotonic()
        rc = sb.stop()
        took = time.monotonic() - t0
        log = sb.service_log("stubborn.service")
        t.ok(rc == 0 and 0.9 <= took <= 3 and "Stopping timed out. Killing." in log,
             "a TERM-ignoring service is killed after TimeoutStopSec=1s",
             f"exit {rc}, took {took:.2f}s\n{log}")


def test_shutdown_order():
    def unit(name, after):
        return f"""[Unit]
{"After=" + after if after else ""}
[Service]
ExecStart=/bin/sh -c 'trap "echo {name} >> @WORK@/stopped; exit 0" TERM; \
echo {name} >> @WORK@/started; while :; do sleep 0.05; done'
[Install]
WantedBy=multi-user.target
"""
    units = {"a.service": unit("a", None), "b.service": unit("b", "a.service"),
             "c.service": unit("c", "b.service")}
    with Sandbox(units) as sb:
        sb.start()
        sb.wait_for(lambda: len(open(sb.work + "/started").read().split()) == 3
                    if os.path.exists(sb.work + "/started") else False, 10)
        rc = sb.stop()
        order = open(sb.work + "/stopped").read().split() if os.path.exists(
            sb.work + "/stopped") else []
        t.ok(rc == 0 and order == ["c", "b", "a"],
             "shutdown stops services in reverse order (c, b, a)", f"order {order}, exit {rc}")


def test_many():
    n = 1000
    units = {f"s{i:04d}.service": """[Service]
Type=oneshot
ExecStart=/bin/true
[Install]
WantedBy=multi-user.target
""" for i in range(n)}
    with Sandbox(units) as sb:
        t0 = time.monotonic()
        sb.start()
        ok = sb.wait_for(lambda: "Startup finished" in sb.vigil_log(), 120)
        took = time.monotonic() - t0
        finished = sum(1 for i in range(n) if "Finished." in sb.service_log(f"s{i:04d}.service"))
        t.ok(ok and finished == n, f"{n} trivial services start ({took:.1f}s)",
             f"{finished} finished")
        t.note(sb.vigil_log().splitlines()[-1] if sb.vigil_log() else "")


def test_bad_unit():
    units = {
        "good.service": """[Service]
ExecStart=/bin/sh -c 'echo good > @WORK@/good; exec sleep 1000'
[Install]
WantedBy=multi-user.target
""",
        "bad.service": """[Service]
ExecStart=/bin/true
Frobnicate=yes
[Install]
WantedBy=multi-user.target
""",
        "cycle1.service": """[Unit]
After=cycle2.service
[Service]
ExecStart=/bin/sleep 1000
[Install]
WantedBy=multi-user.target
""",
        "cycle2.service": """[Unit]
After=cycle1.service
[Service]
ExecStart=/bin/sleep 1000
[Install]
WantedBy=multi-user.target
""",
    }
    with Sandbox(units) as sb:
        sb.start()
        ok = sb.wait_for(lambda: os.path.exists(sb.work + "/good"), 10)
        log = sb.vigil_log()
        t.ok(ok, "a bad unit does not stop the others", log)
        t.ok("bad.service:3: unknown directive Frobnicate= in [Service]" in log and
             "bad.service: not loaded" in log, "the bad unit is reported with file:line", log)
        t.ok("Ordering cycle between cycle1.service, cycle2.service" in log or
             "Ordering cycle between cycle2.service, cycle1.service" in log,
             "an ordering cycle is reported naming its members", log)
        t.ok("not starting: it is part of an ordering cycle" in
             (sb.service_log("cycle1.service") + sb.service_log("cycle2.service")).lower(),
             "services in a cycle are not started")


for test in (test_basic_order, test_backoff, test_jitter, test_backoff_reset,
             test_start_limit_and_retry, test_orphans, test_stop_timeout, test_shutdown_order,
             test_bad_unit, test_many):
    if len(sys.argv) > 1 and test.__name__ not in sys.argv[1:]:
        continue
    try:
        test()
    except Exception as e:  # a broken test is a failure, not a crash of the suite
        t.ok(False, f"{test.__name__} ran", repr(e))
t.done()
