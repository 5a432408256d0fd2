"""PID 1's signals on the real appliance: SIGTERM and Ctrl-Alt-Del reboot cleanly, SIGUSR1
halts, and a crash of vigil itself is caught and, with the appliance's CrashAction=reboot,
reboots instead of panicking the kernel."""

import re
import time

from harness import VM, fsck_clean, step

# qemu runs with -no-reboot: a guest reboot ends qemu.
END_TIMEOUT = 60


def boot_and_end(tap, adir, name, desc, trigger, wants, exits=True, clean_disk=True):
    """Boots, waits for the game, runs trigger(vm), then expects qemu to exit (or, for a halt,
    the console to show it) with every regex of wants on the console."""
    with VM(adir, name=name) as vm:
        step(tap, vm, f"{name}: the appliance is up", lambda: vm.wait_game() and None)

        def end():
            trigger(vm)
            if exits and vm.wait_exit(END_TIMEOUT) is None:
                raise AssertionError(f"qemu still running {END_TIMEOUT} s later")
            deadline = time.monotonic() + END_TIMEOUT
            con = vm.console()
            while not all(re.search(w, con) for w in wants) and time.monotonic() < deadline:
                time.sleep(0.2)
                con = vm.console()
            missing = [w for w in wants if not re.search(w, con)]
            if missing:
                raise AssertionError(f"not on the console: {missing}")
            if "Kernel panic" in con:
                raise AssertionError("the kernel panicked: PID 1 returned")
        step(tap, vm, desc, end)
        vm.kill()
        if clean_disk:
            ok, report = fsck_clean(vm.data)
            tap.ok(ok, f"{name}: the data disk is clean afterwards", None if ok else report)


def main(tap, adir):
    boot_and_end(tap, adir, "sigterm", "SIGTERM to PID 1 stops the services and reboots",
                 lambda vm: vm.send_only("kill -TERM 1"),
                 [r"Shutting down for reboot", r"All services stopped", r"reboot: Restarting"])
    boot_and_end(tap, adir, "ctrl-alt-del", "Ctrl-Alt-Del stops the services and reboots",
                 lambda vm: vm.monitor("sendkey ctrl-alt-delete"),
                 [r"Shutting down for reboot", r"reboot: Restarting"])
    boot_and_end(tap, adir, "halt", "SIGUSR1 to PID 1 stops the services and halts",
                 lambda vm: vm.send_only("kill -USR1 1"),
                 [r"Shutting down for halt", r"reboot: System halted"], exits=False)
    boot_and_end(tap, adir, "crash",
                 "a crash of vigil is logged and the machine reboots (no kernel panic)",
                 lambda vm: vm.send_only("kill -SEGV 1"),
                 [r"vigil: caught SIGSEGV", r"rebooting in \d+"], clean_disk=False)
