"""`image/demo --check` as a user runs it: it builds (here: finds up to date) vigil and the
test appliance, boots it headless, gets the game server's answer to a real server-info
query through the forwarded port, prints the boot timeline and powers off with a clean
data disk. The check passes when it exits 0 having printed all of that."""

import os
import signal
import subprocess
import time

from harness import BOOT_TIMEOUT, BUILD_DIR, ROOT, WORK, log

DEMO = os.path.join(ROOT, "image", "demo")
# What --check prints on the way (the timeline's rows and its verdict).
EXPECTED = ["vigil executed as PID 1", "all services started", "game server answering on",
            "powered off (kill -USR2 1", "image/demo --check: OK"]


def kill_left_behind():
    """After a timeout: the demo's run-vm and qemu (sessions of their own, so not killed
    with the demo) are the processes whose command line names its work directory."""
    mark = os.path.join(WORK, "demo-check") + "/"
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if mark.encode() in f.read():
                    os.kill(int(pid), signal.SIGKILL)
        except (OSError, ValueError):
            pass


def main(tap, adir):
    env = dict(os.environ, VIGIL_BUILD=BUILD_DIR)
    t = time.monotonic()
    try:
        # --check ends by itself (every wait of the harness has its timeout): this one is
        # a last resort
        p = subprocess.run([DEMO, "--check"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=6 * BOOT_TIMEOUT)
        rc, out = p.returncode, p.stdout
    except subprocess.TimeoutExpired as e:
        kill_left_behind()
        rc, out = None, e.stdout or b""
    out = out.decode(errors="replace")
    log(f"image/demo --check: exit {rc} after {time.monotonic() - t:.0f} s")
    missing = [x for x in EXPECTED if x not in out]
    passed = rc == 0 and not missing
    tap.ok(passed, "image/demo --check: boots, the game answers, timeline printed, clean poweroff",
           None if passed else f"exit {rc}; missing: {missing}\n"
           + "\n".join(out.splitlines()[-60:]))
    if passed:
        for line in out.splitlines():
            log("demo: " + line)
