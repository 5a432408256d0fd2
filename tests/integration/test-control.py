#!/usr/bin/python3
"""vigil in the sandbox, driven over its private D-Bus socket with vigilctl: start, stop,
restart, status, logs, sd_notify readiness and watchdog, and PID 1 surviving allocation
failures."""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from sandbox import VIGILCTL, Sandbox, Tap, require_root  # noqa: E402

require_root()
t = Tap()

# A Type=notify service in Python: READY=1 and STATUS= after a moment, then WATCHDOG=1
# pings for as long as @WORK@/ping exists.
NOTIFY = """[Service]
Type=notify
ExecStart=/usr/bin/python3 -c 'import os, socket, time; \\
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.connect(os.environ["NOTIFY_SOCKET"]); \\
time.sleep(0.3); s.send(b"READY=1\\\\nSTATUS=serving 0 players"); \\
exec("while True:\\\\n if os.path.exists(\\\\"@WORK@/ping\\\\"): s.send(b\\\\"WATCHDOG=1\\\\")\\\\n time.sleep(0.1)")'
%s
"""


def test_verbs():
    units = {"idle.service": """[Unit]
Description=Started by hand
[Service]
ExecStart=/bin/sh -c 'echo started $$; exec sleep 1000'
"""}
    with Sandbox(units) as sb:
        sb.start()
        st = sb.status("idle.service")
        t.ok(st and st["active"] == "inactive", "a unit without WantedBy= stays down at boot",
             st)
        r = sb.ctl("start", "idle.service")
        t.ok(r.returncode == 0 and sb.wait_state("idle.service", "active"),
             "vigilctl start", r.stderr)
        pid1 = sb.status("idle.service")["main_pid"]
        r = sb.ctl("restart", "idle")
        ok = sb.wait_for(lambda: (sb.status("idle.service") or {}).get("main_pid") not in
                         (0, pid1) and sb.state_of("idle.service") == "active", 10)
        t.ok(r.returncode == 0 and ok, "vigilctl restart gives a new main process",
             f"{r.stderr} {sb.status('idle.service')}")
        r = sb.ctl("status", "idle.service")
        t.ok(r.returncode == 0 and "Started by hand" in r.stdout and "started" in r.stdout,
             "vigilctl status shows the description and recent log lines", r.stdout)
        r = sb.ctl("logs", "idle.service", "-n", "1")
        t.ok(r.returncode == 0 and len(r.stdout.splitlines()) == 1, "vigilctl logs -n 1",
             r.stdout)
        r = sb.ctl("stop", "idle.service")
        t.ok(r.returncode == 0 and sb.wait_state("idle.service", "inactive"), "vigilctl stop",
             r.stderr)
        r = sb.ctl("status", "idle.service")
        t.ok(r.returncode == 3, "status of a stopped service exits 3", r.returncode)
        r = sb.ctl("start", "nosuch.service")
        t.ok(r.returncode == 1 and "no service named nosuch.service" in r.stderr,
             "an unknown service is a clear error", r.stderr)

        follow = subprocess.Popen([VIGILCTL, "--address", f"unix:path={sb.socket}", "logs",
                                   "-f", "-n", "0", "idle.service"], stdout=subprocess.PIPE,
                                  text=True)
        time.sleep(0.3)
        sb.ctl("start", "idle.service")
        line = follow.stdout.readline()
        follow.terminate()
        follow.wait()
        t.ok("Started." in line or "started" in line, "vigilctl logs -f streams new lines",
             line)

        sb.wait_state("idle.service", "active")
        r = sb.ctl("kill", "idle.service", "SIGKILL")
        ok = r.returncode == 0 and sb.wait_for(
            lambda: (sb.status("idle.service") or {}).get("result") == "signal", 10)
        t.ok(ok, "vigilctl kill NAME SIGKILL: the service dies of it (Result=signal)",
             f"{r.stderr} {sb.status('idle.service')}")
        r = sb.ctl("kill", "idle.service")
        t.ok(r.returncode == 1 and "not running" in r.stderr,
             "vigilctl kill of a service that is not running fails clearly", r.stderr)
        # Its cgroup was emptied with cgroup.kill: the next start must live.
        sb.ctl("start", "idle.service", check=True)
        time.sleep(0.5)
        t.ok(sb.state_of("idle.service") == "active",
             "after a kill with SIGKILL the service starts again and stays up",
             sb.service_log("idle.service"))


def test_notify_and_watchdog():
    unit = NOTIFY % "WatchdogSec=500ms\nRestart=on-watchdog\nRestartSec=100ms"
    units = {"game.service": unit + "[Install]\nWantedBy=multi-user.target\n"}
    with Sandbox(units) as sb:
        open(sb.work + "/ping", "w").close()
        sb.start()
        t.ok(sb.wait_state("game.service", "active", 10), "READY=1 makes a notify service active")
        r = sb.ctl("--json", "status", "game.service")
        st = json.loads(r.stdout) if r.returncode == 0 else {}
        t.ok(st.get("status_text") == "serving 0 players", "STATUS= shows in status", r.stdout)
        time.sleep(1.5)
        st = sb.status("game.service")
        t.ok(st["restarts"] == 0 and st["active"] == "active",
             "a service that sends WATCHDOG=1 in time keeps running", st)
        os.unlink(sb.work + "/ping")
        ok = sb.wait_for(lambda: (sb.status("game.service") or {}).get("restarts", 0) >= 1, 10)
        log = sb.service_log("game.service")
        t.ok(ok and "Watchdog timeout" in log and "SIGABRT" in log,
             "a missed watchdog kills it with SIGABRT and Restart=on-watchdog restarts it", log)


def test_hostile_notify():
    # The main process sends garbage first: empty, oversized, NUL bytes, a long STATUS=,
    # passed fds, a flood; then READY=1. A child's READY=1 must be ignored.
    hostile = """[Service]
Type=notify
ExecStart=/usr/bin/python3 -c 'import os, socket; \\
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.connect(os.environ["NOTIFY_SOCKET"]); \\
s.send(b""); s.send(b"X" * 60000); s.send(b"\\\\x00\\\\xff READY=0"); \\
s.send(b"STATUS=" + b"A" * 5000); \\
f = os.open("@WORK@/marker", os.O_CREAT | os.O_RDWR); \\
socket.send_fds(s, [b"FDSTORE=1"], [f, f, f]); \\
[s.send(b"WATCHDOG=1") for i in range(5000)]; \\
s.send(b"READY=1\\\\nSTATUS=ok"); os.close(f); import time; time.sleep(1000)'
[Install]
WantedBy=multi-user.target
"""
    child = """[Service]
Type=notify
TimeoutStartSec=1s
ExecStart=/bin/sh -c '/usr/bin/python3 -c "import os, socket; \\
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.connect(os.environ[\\"NOTIFY_SOCKET\\"]); \\
s.send(b\\"READY=1\\")"; exec sleep 1000'
[Install]
WantedBy=multi-user.target
"""
    with Sandbox({"hostile.service": hostile, "child.service": child}) as sb:
        sb.start()
        ok = sb.wait_state("hostile.service", "active", 15)
        r = sb.ctl("--json", "status", "hostile.service")
        st = json.loads(r.stdout) if r.returncode == 0 else {}
        t.ok(ok and st.get("status_text") == "ok",
             "garbage, oversized and flooding notifications are dropped; READY=1 still counts",
             f"{st}\n{sb.service_log('hostile.service')}")
        fds = []
        for fd in os.listdir(f"/proc/{sb.pid()}/fd"):
            try:
                fds.append(os.readlink(f"/proc/{sb.pid()}/fd/{fd}"))
            except OSError:
                pass
        t.ok(not any(f.endswith("/marker") for f in fds),
             "file descriptors passed with a notification are closed, not kept", fds)
        failed = sb.wait_for(lambda: (sb.status("child.service") or {}).get("result") ==
                             "timeout", 10)
        t.ok(failed and "Start operation timed out" in sb.service_log("child.service"),
             "READY=1 from a child process is ignored (only the main process may notify)",
             f"{sb.status('child.service')}\n{sb.service_log('child.service')}")
        t.ok(sb.proc.poll() is None and sb.ctl("list").returncode == 0,
             "PID 1 keeps serving")


def test_alloc_failures():
    failalloc = os.environ.get("VIGIL_FAILALLOC")
    if not failalloc or not os.path.exists(failalloc):
        t.ok(True, "allocation failures # SKIP no failalloc.so")
        return
    units = {f"c{i}.service": """[Unit]
StartLimitIntervalSec=0
[Service]
ExecStart=/bin/sh -c 'echo run; sleep 0.1; exit 1'
Restart=always
RestartSec=20ms
[Install]
WantedBy=multi-user.target
""" for i in range(10)}
    units["steady.service"] = """[Service]
ExecStart=/bin/sleep 1000
"""
    with Sandbox(units) as sb:
        # 5% of PID 1's allocations fail from 0.5 s to 4 s after it starts.
        sb.start(env={"LD_PRELOAD": failalloc, "VIGIL_FAILALLOC_PERCENT": "5",
                      "VIGIL_FAILALLOC_WINDOW": "500-4000"})
        for _ in range(20):
            sb.ctl("restart", "steady.service")
            time.sleep(0.15)
        time.sleep(1.5)
        alive = sb.proc.poll() is None
        t.ok(alive, "PID 1 survives 3.5 s of failing allocations", sb.vigil_log()[-3000:])
        r = sb.ctl("start", "steady.service")
        ok = r.returncode == 0 and sb.wait_state("steady.service", "active", 10)
        t.ok(ok, "afterwards it serves requests and starts services again",
             f"{r.stderr} {sb.status('steady.service')}")
        restarting = sb.wait_for(
            lambda: all(sb.state_of(f"c{i}.service") in ("active", "activating")
                        for i in range(10)), 10)
        t.ok(restarting, "the crash-looping services are still supervised")
        rc = sb.stop()
        t.ok(rc == 0, "and it still shuts down cleanly", f"exit {rc}")


def test_colors():
    """Colours only on a terminal: list and status colour the states on a pty (green active,
    red failed, a bold header) and print no escape at all into a pipe; on a terminal a
    service's own control characters are defused."""
    units = {"good.service": """[Unit]
Description=Good
[Service]
ExecStart=/bin/sh -c 'printf "\\033[2Jwiped\\n"; exec sleep 1000'
[Install]
WantedBy=multi-user.target
""", "bad.service": """[Service]
ExecStart=/bin/sh -c 'exit 3'
[Install]
WantedBy=multi-user.target
"""}
    green, red, bold, reset = "\033[0;32m", "\033[0;31m", "\033[1m", "\033[0m"
    with Sandbox(units) as sb:
        sb.start()
        sb.wait_state("good.service", "active")
        sb.wait_state("bad.service", "failed")
        sb.wait_for(lambda: "wiped" in sb.service_log("good.service"), 10)
        rc, out, err = sb.ctl_tty("list")
        rows = {line.split()[0]: line for line in out.splitlines() if line.split()}
        t.ok(rc == 0 and out.startswith(bold) and
             green + "active" in rows.get("good.service", "") and
             red + "failed" in rows.get("bad.service", ""),
             "vigilctl list on a terminal: a bold header, active in green, failed in red",
             repr(out) + err)
        rc, out, err = sb.ctl_tty("status", "good")
        t.ok(rc == 0 and out.startswith(green + "●" + reset) and
             f"Active: {green}active (running){reset}" in out,
             "vigilctl status on a terminal: the dot and the state in green", repr(out) + err)
        t.ok("\033[2J" not in out and "?[2Jwiped" in out,
             "a log line's escape sequence reaches the terminal defused", repr(out))
        rc, out, err = sb.ctl_tty("status", "bad")
        t.ok(rc == 3 and out.startswith(red + "●" + reset) and
             f"Active: {red}failed (failed){reset}" in out,
             "vigilctl status of a failed service on a terminal: in red, exit 3", repr(out) + err)
        piped = [sb.ctl(*a) for a in (["list"], ["status", "good"], ["status", "bad"])]
        t.ok(all(r.returncode in (0, 3) and r.stdout and "\033[" not in r.stdout.replace(
            "\033[2Jwiped", "") for r in piped) and "good.service" in piped[0].stdout,
             "piped, list and status print no colour escapes (a service's own output passes "
             "as it is)", [r.stdout for r in piped])


t.run([test_verbs, test_notify_and_watchdog, test_hostile_notify, test_alloc_failures,
       test_colors])
