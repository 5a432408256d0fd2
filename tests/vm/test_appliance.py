"""One boot of the game-server appliance: vigil is PID 1, every unit runs, the game server
answers through the forwarded port, a killed server is restarted, a clean poweroff leaves the
data disk clean."""

import json
import os
import re
import time

from harness import BOOT_TIMEOUT, VM, fsck_clean, log, step

GAME = "teeworlds.service"


def service_ok(s):
    # a oneshot that finished (network.service) is inactive/dead with result success
    return s["result"] == "success" and (
        (s["active"] == "active" and s["sub"] == "running") or
        (s["active"] == "inactive" and s["sub"] == "dead"))


def main(tap, adir):
    with VM(adir, name="appliance") as vm:
        def boot():
            t = vm.sync()
            log(f"test channel answers {t:.1f} s after qemu started")
        step(tap, vm, "boot: the test channel answers", boot)

        def pid1():
            comm = vm.check("cat /proc/1/comm").strip()
            exe = vm.check("readlink /proc/1/exe").strip()
            if exe != "/sbin/vigil" or comm not in ("vigil", "init"):
                raise AssertionError(f"PID 1 is comm={comm!r} exe={exe!r}, not /sbin/vigil")
        step(tap, vm, "vigil is PID 1 (/proc/1/exe is /sbin/vigil)", pid1)

        def data_disk_by_label():
            # No udev: vigil finds the LABEL= of /etc/fstab in the disk's ext4 superblock.
            lines = [ln.split() for ln in vm.check("cat /etc/fstab").splitlines()
                     if ln.strip() and not ln.startswith("#")]
            what = [f[0] for f in lines if len(f) > 1 and f[1] == "/var"]
            if len(what) != 1 or not what[0].startswith("LABEL="):
                raise AssertionError(f"/etc/fstab names /var by {what!r}, not one LABEL=")
            mounts = vm.check("grep ' /var ' /proc/mounts")
            if not mounts.startswith("/dev/vda "):
                raise AssertionError(f"/var is not /dev/vda: {mounts!r}")
            said = vm.console() + vm.check("dmesg")
            if not re.search(r"Mounted LABEL=\S+ \(/dev/vda\) on /var", said):
                raise AssertionError("no \"Mounted LABEL=... (/dev/vda) on /var\" in the log")
        step(tap, vm, "/var is the data disk, found by its label without udev",
             data_disk_by_label)

        def units():
            deadline = time.monotonic() + BOOT_TIMEOUT
            while True:
                rows = json.loads(vm.check("vigilctl --json list"))
                bad = [s for s in rows if not service_ok(s)]
                if rows and not bad and any(s["name"] == GAME for s in rows):
                    break
                if time.monotonic() > deadline:
                    raise AssertionError("units not all running:\n" +
                                         "\n".join(json.dumps(s) for s in (bad or rows)))
                time.sleep(1)
            log("units: " + ", ".join(f"{s['name']} {s['active']}/{s['sub']}" for s in rows))
        step(tap, vm, "every unit is active (or a finished oneshot)", units)

        def system_bus():
            deadline = time.monotonic() + BOOT_TIMEOUT
            while True:
                rc, out = vm.run("vigilctl --system --json list")
                if rc == 0 and GAME in out:
                    break
                if time.monotonic() > deadline:
                    raise AssertionError(f"vigilctl --system list: exit {rc}: {out}")
                time.sleep(1)
        step(tap, vm, "vigil answers as org.vigil1 on the system bus (dbus.service)",
             system_bus)

        def game():
            info = vm.wait_game()
            log(f"game server answers {vm.elapsed():.1f} s after qemu started: "
                f"{json.dumps(info)}")
        step(tap, vm, "the game server answers twquery through the forwarded port", game)

        def isolated_network():
            # Host side: qemu's user network has no way out, only the relayed game port.
            pids = vm.qemu_pids()
            if not pids:
                raise AssertionError("no qemu process found below run-vm")
            host_ns = os.readlink("/proc/self/ns/net")
            for pid in pids:
                if os.readlink(f"/proc/{pid}/ns/net") == host_ns:
                    raise AssertionError(f"qemu {pid} shares the host's network namespace")
                with open(f"/proc/{pid}/net/dev") as f:
                    links = [ln.split(":")[0].strip() for ln in f.readlines()[2:]]
                if links != ["lo"]:
                    raise AssertionError(f"qemu {pid}'s network namespace has {links}")
            # Guest side: a connection to TEST-NET-1 (RFC 5737, never routed) fails at once.
            rc, out = vm.run("timeout 10 nc 192.0.2.1 80 </dev/null; echo rc=$?")
            if "rc=0" in out:
                raise AssertionError(f"the guest reached 192.0.2.1:80: {out}")
            log(f"guest connection to 192.0.2.1:80: {out.strip().splitlines()[-1]}")
        step(tap, vm, "nothing leaves the machine: qemu's namespace has only lo, the guest "
             "reaches no outside address", isolated_network)

        def container():
            st = json.loads(vm.check(f"vigilctl --json status {GAME}"))
            pid = st["main_pid"]
            status = vm.check(f"cat /proc/{pid}/status")
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            f = {k: v.split() for k, v in fields.items()}
            uid_map = vm.check(f"cat /proc/{pid}/uid_map").split()
            root = vm.check(f"readlink /proc/{pid}/root").strip()
            mounts = vm.check(f"cat /proc/{pid}/mounts")
            problems = []
            if len(f["NSpid"]) != 2 or f["NSpid"][1] != "1":
                problems.append(f"not PID 1 of a namespace of its own: NSpid {f['NSpid']}")
            if int(f["Uid"][0]) < 524288:
                problems.append(f"host uid {f['Uid'][0]}: not in a user namespace range")
            if uid_map[:1] != ["0"] or uid_map[2:3] != ["65536"]:
                problems.append(f"uid_map {uid_map}")
            if f["CapEff"] != ["0000000000000000"] or f["CapBnd"] != ["0000000000000000"]:
                problems.append(f"capabilities {f['CapEff']} {f['CapBnd']}")
            if f["NoNewPrivs"] != ["1"] or f["Seccomp"] != ["2"]:
                problems.append(f"NoNewPrivs {f['NoNewPrivs']} Seccomp {f['Seccomp']}")
            cg = vm.check("grep ' /sys/fs/cgroup cgroup2 ' /proc/mounts")
            if "favordynmods" not in cg:
                problems.append(f"cgroup2 without favordynmods: {cg}")
            if not re.search(r"^\S+ / squashfs ro,", mounts, re.M):
                problems.append("its root is not the read-only squashfs image:\n" + mounts)
            if problems:
                raise AssertionError("\n".join(problems))
            log(f"{GAME}: host uid {f['Uid'][0]}, NSpid {' '.join(f['NSpid'])}, root {root}, "
                f"uid_map {' '.join(uid_map)}")
        step(tap, vm, "the game server runs in its container: own PID namespace and uid range, "
             "no capabilities, filtered, read-only image root", container)

        def restart():
            st = json.loads(vm.check(f"vigilctl --json status {GAME}"))
            pid = st["main_pid"]
            if not pid:
                raise AssertionError(f"{GAME} has no main pid: {st}")
            t0 = time.monotonic()
            vm.check(f"kill -9 {pid}")
            deadline = t0 + BOOT_TIMEOUT
            while True:
                # exit 3 while it is not running: the JSON is printed all the same
                _, out = vm.run(f"vigilctl --json status {GAME}")
                try:
                    st = json.loads(out)
                except ValueError:
                    st = {"main_pid": 0, "active": out.strip()}
                if st["main_pid"] not in (0, pid) and st["active"] == "active":
                    break
                if time.monotonic() > deadline:
                    raise AssertionError(f"{GAME} not restarted: {st}")
                time.sleep(0.2)
            t_pid = time.monotonic() - t0
            vm.wait_game()
            t_game = time.monotonic() - t0
            # vigil's own view: from "Main process exited" to the next "Started." in its log
            _, out = vm.run(f"tail -n 200 /var/log/vigil/{GAME}.log")
            stamps = re.findall(r"^(\S+T(\d+):(\d+):([\d.]+)Z) (Main process \w+|Started\.)",
                                out, re.M)
            latency = ""
            for i in range(len(stamps) - 1, 0, -1):
                if stamps[i][4].startswith("Started") and stamps[i - 1][4].startswith("Main"):
                    sec = [int(stamps[j][1]) * 3600 + int(stamps[j][2]) * 60 +
                           float(stamps[j][3]) for j in (i - 1, i)]
                    latency = f"; vigil: exit -> restarted in {(sec[1] - sec[0]) * 1000:.0f} ms"
                    break
            log(f"restart: new main pid {st['main_pid']} after {t_pid:.2f} s, answering again "
                f"after {t_game:.2f} s (host clock){latency}")
        step(tap, vm, "kill -9 of the game server: restarted and answering again", restart)

        def poweroff():
            t = vm.poweroff()
            rc = vm.proc.returncode
            log(f"poweroff: qemu exited {t:.1f} s after kill -USR2 1 (status {rc})")
            if rc != 0:
                raise AssertionError(f"qemu exit status {rc}")
        if step(tap, vm, "kill -USR2 1 powers off and qemu exits", poweroff) is None and \
                vm.alive():
            vm.kill()

        def fsck():
            ok, report = fsck_clean(vm.data)
            if not ok:
                raise AssertionError(report)
        step(tap, vm, "after poweroff the data disk is clean (e2fsck -fn, no needs_recovery)",
             fsck)
