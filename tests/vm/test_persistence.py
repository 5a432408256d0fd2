"""The data disk (/var) keeps its contents across a poweroff and a new boot."""

import os
import uuid

from harness import VM, fsck_clean, step

FILE = "/var/lib/vigil-test/persist"


def main(tap, adir):
    token = uuid.uuid4().hex
    with VM(adir, name="persist-1") as vm:
        data = vm.data
        vm.failed = True  # keep the disk for the second boot
        step(tap, vm, "persistence, boot 1: write a file in /var",
             lambda: vm.check(f"mkdir -p {os.path.dirname(FILE)} && echo {token} > {FILE} "
                              f"&& sync && grep -q ' /var ' /proc/mounts"))
        step(tap, vm, "persistence, boot 1: clean poweroff", lambda: vm.poweroff() and None)
    ok, report = fsck_clean(data)
    tap.ok(ok, "persistence: the data disk is clean between the boots", None if ok else report)
    with VM(adir, name="persist-2", data=data, fresh_data=False) as vm2:
        def read():
            got = vm2.check(f"cat {FILE}").strip()
            if got != token:
                raise AssertionError(f"read {got!r}, wrote {token!r}")
        step(tap, vm2, "persistence, boot 2: the file written in boot 1 is there", read)
        step(tap, vm2, "persistence, boot 2: clean poweroff", lambda: vm2.poweroff() and None)
    if not vm2.failed:
        try:
            os.unlink(data)
        except OSError:
            pass
