"""PID 1's signals on the real appliance: SIGTERM reboots cleanly, and a crash of vigil itself
is caught and, with the appliance's CrashAction=reboot, reboots instead of panicking."""

import re

from harness import VM, fsck_clean, step

# qemu runs with -no-reboot: a guest reboot ends qemu.
REBOOT_TIMEOUT = 60


def reboot_on_sigterm(tap, adir):
    with VM(adir, name="sigterm") as vm:
        step(tap, vm, "sigterm: the appliance is up", lambda: vm.wait_game() and None)

        def term():
            vm.send_only("kill -TERM 1")
            if vm.wait_exit(REBOOT_TIMEOUT) is None:
                raise AssertionError(f"qemu still running {REBOOT_TIMEOUT} s after kill -TERM 1")
            con = vm.console()
            for want in ("Shutting down for reboot", "All services stopped", "reboot: Restarting"):
                if want not in con:
                    raise AssertionError(f"no \"{want}\" on the console")
        step(tap, vm, "SIGTERM to PID 1 stops the services and reboots", term)
        data = vm.data
        ok, report = fsck_clean(data)
        tap.ok(ok, "after the SIGTERM reboot the data disk is clean", None if ok else report)


def crash_reboots(tap, adir):
    with VM(adir, name="crash") as vm:
        step(tap, vm, "crash: the appliance is up", lambda: vm.wait_game() and None)

        def crash():
            vm.send_only("kill -SEGV 1")
            if vm.wait_exit(REBOOT_TIMEOUT) is None:
                raise AssertionError("qemu still running: vigil neither rebooted nor died")
            con = vm.console()
            if not re.search(r"vigil: caught SIGSEGV", con):
                raise AssertionError("no crash message on the console")
            if "Kernel panic" in con:
                raise AssertionError("the kernel panicked: PID 1 returned")
            if not re.search(r"rebooting in \d+", con):
                raise AssertionError("no reboot announced")
        step(tap, vm, "a crash of vigil is logged and the machine reboots (no kernel panic)",
             crash)


def main(tap, adir):
    reboot_on_sigterm(tap, adir)
    crash_reboots(tap, adir)
