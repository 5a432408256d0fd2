#!/usr/bin/python3
"""Containers in vigil --sandbox: roots from directories and squashfs images, the mounts a
container gets, identity (user namespace, image users), privileges, and mount targets that
try to escape through symbolic links."""

import glob
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from sandbox import Sandbox, Tap, require_root  # noqa: E402

require_root()
t = Tap()

BUSYBOX = shutil.which("busybox") or "/bin/busybox"
APPLETS = ["sh", "cat", "ls", "id", "echo", "sleep", "hostname", "ps", "grep", "touch",
           "readlink", "stat", "wc", "mkdir", "head", "tr"]
RANGE_FIRST = 0x80000


def make_root(path, extra=None):
    """A minimal root: static busybox, the mount points, users of its own."""
    for d in ["bin", "proc", "dev", "sys", "tmp", "run", "etc", "srv", "out", "data", "home"]:
        os.makedirs(os.path.join(path, d), exist_ok=True)
    shutil.copy(BUSYBOX, os.path.join(path, "bin/busybox"))
    for a in APPLETS:
        os.symlink("busybox", os.path.join(path, "bin", a))
    with open(os.path.join(path, "etc/passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nplayer:x:1234:1234:player:/srv:/bin/sh\n")
    with open(os.path.join(path, "etc/group"), "w") as f:
        f.write("root:x:0:\nplayer:x:1234:\n")
    if extra:
        extra(path)
    return path


def make_image(sb, name, version, root):
    """Installs root as image NAME VERSION in the sandbox's store."""
    d = os.path.join(sb.dir, "images", name)
    os.makedirs(d, exist_ok=True)
    f = os.path.join(d, version + ".squashfs")
    subprocess.run(["mksquashfs", root, f, "-quiet", "-noappend", "-all-root"], check=True,
                   stdout=subprocess.DEVNULL)
    link = os.path.join(d, "current")
    if os.path.lexists(link):
        os.unlink(link)
    os.symlink(version + ".squashfs", link)
    return f


def out_dir(sb):
    """A host directory every container may write to (its users are mapped far away)."""
    d = os.path.join(sb.work, "out")
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o777)
    return d


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def status_field(text, key):
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return line.split(":", 1)[1].strip()
    return None


PROBE = """[Service]
RootDirectory=@ROOT@
User=player
ExecStart=/bin/sh -c 'id -u > /out/uid; hostname > /out/hostname; \
cat /proc/self/status > /out/status; ls /proc/self/fd > /out/fds; \
ls /proc | grep -E "^[0-9]+$" | wc -l > /out/nprocs; \
touch /bin/new 2> /out/ro || echo writable >> /out/ro; \
echo made > /out/by-container; ls /dev > /out/dev; \
head -c 16 /dev/urandom | wc -c > /out/urandom; echo x > /dev/null && echo ok > /out/null; \
cat /proc/self/uid_map > /out/uid_map; ls /sys/class/net > /out/net; \
readlink /proc/self/ns/net > /out/netns; echo done > /out/done; \
exec sleep 1000'
BindPaths=@OUT@:/out
%s
[Install]
WantedBy=multi-user.target
"""


def test_directory_root():
    with Sandbox({}) as sb:
        root = make_root(os.path.join(sb.dir, "root"))
        out = out_dir(sb)
        sb.write_unit("probe.service", PROBE.replace("@ROOT@", root).replace("@OUT@", out) %
                      "[Container]\nHostName=arena\nNetwork=none\n")
        sb.start()
        ok = sb.wait_for(lambda: read(out + "/done"), 10, "the probe")
        if not t.ok(ok, "a container on RootDirectory= runs", sb.service_log("probe.service")):
            return
        st = read(out + "/status")
        t.ok(read(out + "/uid").strip() == "1234",
             "User= is resolved from the image's /etc/passwd (uid 1234 inside)",
             read(out + "/uid"))
        owner = os.stat(out + "/by-container").st_uid
        t.ok(owner >= RANGE_FIRST and owner % 65536 == 1234,
             f"uid 1234 inside is {owner} outside, not 0 or 1234 (user namespace)")
        t.ok(read(out + "/uid_map").split()[:3] == ["0", str(owner - 1234), "65536"],
             "uids 0-65535 are mapped to a range of the service's own", read(out + "/uid_map"))
        t.ok(status_field(st, "CapEff") == "0000000000000000" and
             status_field(st, "CapBnd") == "0000000000000000",
             "no capabilities: CapEff and CapBnd empty", st)
        t.ok(status_field(st, "NoNewPrivs") == "1", "NoNewPrivs is on by default", st)
        t.ok(status_field(st, "Seccomp") == "2", "the baseline system call filter is on", st)
        t.ok(read(out + "/fds").split() == ["0", "1", "2", "3"],
             "only stdin, stdout, stderr (and ls's own directory fd) are open",
             read(out + "/fds"))
        t.ok(read(out + "/nprocs").strip() in ("1", "2", "3", "4"),
             "the host's processes are invisible (own PID namespace)", read(out + "/nprocs"))
        t.ok("Read-only file system" in read(out + "/ro"), "the root is read-only",
             read(out + "/ro"))
        t.ok(read(out + "/hostname").strip() == "arena", "HostName=")
        t.ok(read(out + "/net").split() == ["lo"], "Network=none: only loopback",
             read(out + "/net"))
        dev = read(out + "/dev").split()
        t.ok(all(d in dev for d in ["null", "zero", "full", "random", "urandom", "tty", "pts",
                                     "shm", "mqueue", "ptmx"]) and "sda" not in dev
             and "kmsg" not in dev, "a minimal /dev", " ".join(dev))
        t.ok(read(out + "/urandom").strip() == "16" and read(out + "/null") == "ok\n",
             "its device nodes work: /dev/urandom reads, /dev/null writes",
             read(out + "/urandom") + sb.service_log("probe.service"))

        # The same range after a restart: the files it made stay its own.
        base = owner - 1234
        netns = read(out + "/netns")
        t.ok(netns and netns != os.readlink("/proc/self/ns/net") + "\n",
             "Network=none: a network namespace of its own", netns)
        os.unlink(out + "/done")
        sb.ctl("restart", "probe.service", check=True)
        sb.wait_for(lambda: read(out + "/done"), 10, "the restarted probe")
        t.ok(os.stat(out + "/by-container").st_uid == owner,
             "the uid range is the same after a restart")
        t.ok(read(out + "/netns") == netns,
             "... and the network namespace too (made once, joined at each start)")
        t.ok(f"probe.service {base}" in read(os.path.join(sb.state, "userns")),
             "the range is recorded in STATE/userns", read(os.path.join(sb.state, "userns")))

        # A container's init that does not handle SIGTERM still stops at once.
        t0 = time.monotonic()
        sb.ctl("stop", "probe.service", check=True)
        ok = sb.wait_state("probe.service", "inactive", 10)
        t.ok(ok and time.monotonic() - t0 < 3,
             f"stopping a shell as the container's init takes {time.monotonic() - t0:.2f}s")


IMAGE_UNIT = """[Service]
ExecStart=/bin/sh -c 'cat /etc/version > /out/%s; touch /tmp/x && echo tmp-ok >> /out/%s; \
exec sleep 1000'
BindPaths=@OUT@:/out
[Container]
Image=arena
[Install]
WantedBy=multi-user.target
"""


def loops_backed_by(path):
    n = 0
    for f in glob.glob("/sys/block/loop*/loop/backing_file"):
        if read(f).strip() == path:
            n += 1
    return n


def test_image_store():
    with Sandbox({}) as sb:
        out = out_dir(sb)

        def version(v):
            return lambda p: open(os.path.join(p, "etc/version"), "w").write(v + "\n")

        root = make_root(os.path.join(sb.dir, "root"), version("1.0"))
        image = make_image(sb, "arena", "1.0", root)
        for n in ("a", "b"):
            sb.write_unit(f"{n}.service", IMAGE_UNIT.replace("@OUT@", out) % (n, n))
        sb.write_unit("r.service", IMAGE_UNIT.replace("@OUT@", out).replace(
            "[Container]\n", "[Container]\nKeepReady=yes\n") % ("r", "r"))
        sb.write_unit("missing.service", """[Service]
ExecStart=/bin/true
[Container]
Image=nosuch
[Install]
WantedBy=multi-user.target
""")
        sb.start()
        ok = sb.wait_for(lambda: "tmp-ok" in read(out + "/a") and "tmp-ok" in read(out + "/b"),
                         10, "both services")
        t.ok(ok and read(out + "/a").startswith("1.0"),
             "Image= runs on the store's current squashfs", sb.vigil_log())
        st = sb.ctl("status", "a.service").stdout
        t.ok("Image: arena 1.0" in st, "vigilctl status names the image and its version", st)
        t.ok(loops_backed_by(image) == 1, "two services share one loop device and mount",
             f"{loops_backed_by(image)} loop devices")
        t.ok(sb.wait_state("missing.service", "failed", 10) and
             "image nosuch is not installed" in sb.vigil_log(),
             "a missing image fails the start, saying so", sb.vigil_log())

        # KeepReady=: stopped, r's next main process waits prepared on 1.0, in r's cgroup.
        r_procs = os.path.join(sandbox_cgroup(sb) or "/nonexistent", "r.service", "cgroup.procs")
        sb.ctl("stop", "r.service", check=True)
        t.ok(sb.wait_state("r.service", "inactive", 10) and
             sb.wait_for(lambda: len(read(r_procs).split()) == 1, 5),
             "KeepReady=: a stopped service's next process waits in its cgroup",
             read(r_procs) + sb.vigil_log())
        old_spare = read(r_procs).split()

        # A new version is picked up at the next start.
        shutil.rmtree(root)
        root = make_root(os.path.join(sb.dir, "root"), version("2.0"))
        make_image(sb, "arena", "2.0", root)
        os.unlink(out + "/a")
        sb.ctl("restart", "a.service", check=True)
        ok = sb.wait_for(lambda: "tmp-ok" in read(out + "/a"), 10, "a restarted")
        t.ok(ok and read(out + "/a").startswith("2.0"), "a restart uses the new current version",
             read(out + "/a"))

        # ... and is dropped at the start: the new version runs; stopped again, the next
        # waits prepared on 2.0, and the start after runs it.
        os.unlink(out + "/r")
        sb.ctl("start", "r.service", check=True)
        ok = sb.wait_for(lambda: "tmp-ok" in read(out + "/r"), 10, "r started")
        t.ok(ok and old_spare and read(out + "/r").startswith("2.0") and
             main_pid(sb, "r.service") not in [int(p) for p in old_spare],
             "KeepReady=: a new image version drops the waiting process",
             f"waiting before {old_spare}, main {main_pid(sb, 'r.service')}\n" + read(out + "/r"))
        sb.ctl("stop", "r.service", check=True)
        sb.wait_state("r.service", "inactive", 10)
        sb.wait_for(lambda: len(read(r_procs).split()) == 1, 5)
        new_spare = read(r_procs).split()
        os.unlink(out + "/r")
        sb.ctl("start", "r.service", check=True)
        ok = sb.wait_for(lambda: "tmp-ok" in read(out + "/r"), 10, "r started again")
        t.ok(ok and read(out + "/r").startswith("2.0") and new_spare and
             main_pid(sb, "r.service") == int(new_spare[0]),
             "... and the next, prepared on 2.0, is the one the start after runs",
             f"waiting {new_spare}, main {main_pid(sb, 'r.service')}")
        sb.stop()
    t.ok(loops_backed_by(image) == 0, "the loop device is released when vigil exits")


def test_root_image_and_mounts():
    with Sandbox({}) as sb:
        out = out_dir(sb)
        shared = os.path.join(sb.work, "shared")
        os.makedirs(shared)
        open(os.path.join(shared, "motd"), "w").write("hello\n")
        root = make_root(os.path.join(sb.dir, "root"))
        image = os.path.join(sb.dir, "game.squashfs")
        subprocess.run(["mksquashfs", root, image, "-quiet", "-noappend", "-all-root"],
                       check=True, stdout=subprocess.DEVNULL)
        sb.write_unit("m.service", f"""[Service]
RootImage={image}
ExecStart=/bin/sh -c 'cat /srv/motd > /out/motd; touch /srv/x 2>> /out/err; \
echo kept > /data/file 2>> /out/err; grep -E " /run | /tmp | /data | /srv " /proc/mounts > /out/mounts; \
exec sleep 1000'
BindPaths={out}:/out
BindReadOnlyPaths={shared}:/srv
[Container]
Volume=saves:/data:U
Volume=home:/home:U
Tmpfs=/run:size=1m,mode=0700
User=player
UserNS=host
[Install]
WantedBy=multi-user.target
""")
        sb.start()
        ok = sb.wait_for(lambda: read(out + "/mounts"), 10, "the service")
        t.ok(ok and read(out + "/motd") == "hello\n", "RootImage= and BindReadOnlyPaths=",
             sb.service_log("m.service") + sb.vigil_log())
        t.ok("Read-only" in read(out + "/err"), "BindReadOnlyPaths= is read-only",
             read(out + "/err"))
        vol = os.path.join(sb.dir, "volumes", "saves", "file")
        t.ok(read(vol) == "kept\n", "a named Volume= lives in VOLUMES/NAME", vol)
        m = read(out + "/mounts")
        t.ok(" /run tmpfs " in m and "size=1024k" in m and "mode=700" in m,
             "Tmpfs= with its options", m)
        t.ok(os.stat(vol).st_uid == 1234, "UserNS=host: the container's uids are the host's")
        home = os.path.join(sb.dir, "volumes", "home")  # its first start made it
        t.ok(os.stat(home).st_uid == 1234 and os.stat(home).st_gid == 1234,
             "Volume=...:U belongs to User= (looked up in the image)")


def test_escapes():
    victim = "/tmp/vigil-victim"
    shutil.rmtree(victim, ignore_errors=True)
    os.makedirs(victim)
    open(os.path.join(victim, "precious"), "w").write("host data\n")
    with Sandbox({}) as sb:
        def link_data(p):
            os.rmdir(os.path.join(p, "data"))
            os.symlink(victim, os.path.join(p, "data"))

        def link_proc(p):
            os.rmdir(os.path.join(p, "proc"))
            os.symlink("/proc", os.path.join(p, "proc"))

        r1 = make_root(os.path.join(sb.dir, "r1"), link_data)
        r2 = make_root(os.path.join(sb.dir, "r2"), link_proc)
        sb.write_unit("volume-escape.service", f"""[Service]
RootDirectory={r1}
ExecStart=/bin/sh -c 'echo pwned > /data/precious'
[Container]
Volume=loot:/data
[Install]
WantedBy=multi-user.target
""")
        sb.write_unit("proc-link.service", f"""[Service]
RootDirectory={r2}
ExecStart=/bin/true
[Install]
WantedBy=multi-user.target
""")
        sb.start()
        ok = sb.wait_state("volume-escape.service", "failed", 10)
        log = sb.service_log("volume-escape.service")
        t.ok(ok and "symbolic link" in log, "a Volume= target that is a symlink in the image "
             "is refused", log)
        t.ok(read(os.path.join(victim, "precious")) == "host data\n",
             "the host path the symlink names is untouched")
        ok = sb.wait_state("proc-link.service", "failed", 10)
        log = sb.service_log("proc-link.service")
        t.ok(ok and "symbolic link" in log, "a symlinked /proc in the image is refused", log)
    shutil.rmtree(victim, ignore_errors=True)


def test_privileges():
    with Sandbox({}) as sb:
        out = out_dir(sb)
        root = make_root(os.path.join(sb.dir, "root"))
        sb.write_unit("caps.service", f"""[Service]
RootDirectory={root}
ExecStart=/bin/sh -c 'cat /proc/self/status > /out/status; exec sleep 1000'
BindPaths={out}:/out
User=player
AmbientCapabilities=CAP_NET_BIND_SERVICE
NoNewPrivileges=no
[Install]
WantedBy=multi-user.target
""")
        sb.write_unit("root.service", f"""[Service]
RootDirectory={root}
ExecStart=/bin/sh -c 'cat /proc/self/status > /out/status-root; exec sleep 1000'
BindPaths={out}:/out
NoNewPrivileges=no
[Install]
WantedBy=multi-user.target
""")
        sb.start()
        ok = sb.wait_for(lambda: read(out + "/status") and read(out + "/status-root"), 10,
                         "the services")
        st = read(out + "/status")
        want = "%016x" % (1 << 10)
        t.ok(ok and status_field(st, "CapEff") == want and status_field(st, "CapAmb") == want
             and status_field(st, "CapBnd") == want,
             "AmbientCapabilities= for a user: exactly that capability, bounded to it", st)
        t.ok(status_field(st, "NoNewPrivs") == "1",
             "NoNewPrivileges=no, but a user without CAP_SYS_ADMIN: the filter implies it", st)
        st = read(out + "/status-root")
        t.ok(status_field(st, "NoNewPrivs") == "0" and status_field(st, "Seccomp") == "2",
             "NoNewPrivileges=no for the container's root is honoured", st)


TRY_SYSCALL = os.path.join(os.environ.get("VIGIL_BUILD", "build"), "tests/integration/try-syscall")
# Every call the container baseline refuses (clone3 with ENOSYS, so that libc falls back).
BASELINE = """keyctl add_key request_key bpf ptrace process_vm_readv process_vm_writev mount umount2
pivot_root move_mount fsopen fsmount fsconfig fspick open_tree mount_setattr chroot unshare setns
clone_newuser clone_newns clone3:ENOSYS open_by_handle_at name_to_handle_at userfaultfd
perf_event_open kexec_load kexec_file_load init_module finit_module delete_module io_uring_setup
io_uring_enter io_uring_register personality socket_alg socket_alg_hi socket_vsock ioctl_tiocsti
ioctl_tiocsti_hi socketcall reboot swapon swapoff acct settimeofday clock_settime adjtimex syslog
iopl ioperm quotactl lookup_dcookie vhangup nfsservctl uselib kcmp sethostname""".split()


def test_syscalls():
    """try-syscall in default containers: every forbidden call, through each x86 ABI."""
    with Sandbox({}) as sb:
        out = out_dir(sb)

        def add_probe(p):
            shutil.copy(TRY_SYSCALL, os.path.join(p, "bin/try-syscall"))

        root = make_root(os.path.join(sb.dir, "root"), add_probe)
        cases = {
            # name: (extra unit lines, try-syscall arguments)
            "default": ("", ["--blocked-errno", "EPERM", "--abis", "native"]),
            "errno": ("SystemCallErrorNumber=EMEDIUMTYPE\n",
                      ["--blocked-errno", "EMEDIUMTYPE", "--abis", "native"]),
            "all-abis": ("SystemCallErrorNumber=EMEDIUMTYPE\n"
                         "SystemCallArchitectures=native x86 x32\n",
                         ["--blocked-errno", "EMEDIUMTYPE", "--abis", "native,x86,x32"]),
        }
        for name, (extra, args) in cases.items():
            sb.write_unit(f"try-{name}.service", f"""[Service]
RootDirectory={root}
BindPaths={out}:/out
ExecStart=/bin/sh -c '/bin/try-syscall --status --fds {" ".join(args + BASELINE)} \
> /out/{name} 2>&1; echo $? > /out/{name}.rc'
{extra}[Install]
WantedBy=multi-user.target
""")
        sb.start()
        sb.wait_for(lambda: all(read(f"{out}/{n}.rc") for n in cases), 20, "try-syscall")
        for name in cases:
            result = read(f"{out}/{name}")
            ok = t.ok(read(f"{out}/{name}.rc").strip() == "0",
                      f"try-syscall in a {name} container: every forbidden call refused, "
                      "the controls let through", result)
            if ok and name == "all-abis":
                t.note("syscall x ABI in a container with SystemCallArchitectures=native x86 "
                       "x32 (errno each call got):")
                t.note(result)
        st = read(f"{out}/default")
        t.ok("CapEff=0000000000000000" in st and "NoNewPrivs=1" in st and "Seccomp=2" in st,
             "try-syscall's view: no capabilities, no_new_privs, filtered", st)
        t.ok("Uid=0,0,0,0" in st and "Gid=0,0,0,0" in st and "Groups=\n" in st,
             "without User= it runs as the container's root (not the host's, unnamed)", st)
        t.ok(os.stat(f"{out}/default").st_uid >= RANGE_FIRST,
             "... whose files on the host belong to its range")


def sandbox_cgroup(sb):
    """The host path of vigil's cgroup subtree, as its log says."""
    import re
    m = re.search(r"Services run in cgroups below (\S+?)\.? ", sb.vigil_log())
    return m.group(1) if m else None


def main_pid(sb, name):
    """The service's main process as the host sees it (vigil --sandbox has its own PID
    namespace: its MainPID is the second NSpid of the host's process)."""
    import json
    try:
        pid = json.loads(sb.ctl("--json", "status", name).stdout).get("main_pid", 0)
    except ValueError:
        return 0
    cg = os.path.join(sandbox_cgroup(sb) or "/nonexistent", name, "cgroup.procs")
    for host in read(cg).split():
        for line in read(f"/proc/{host}/status").splitlines():
            if line.startswith("NSpid:") and line.split()[2:3] == [str(pid)]:
                return int(host)
    return 0


def test_keep_ready():
    with Sandbox({}) as sb:
        out = out_dir(sb)
        root = make_root(os.path.join(sb.dir, "root"))
        env = os.path.join(sb.work, "ready.env")
        open(env, "w").write("GREETING=one\n")
        data = os.path.join(sb.work, "data")
        os.makedirs(data)
        sb.write_unit("ready.service", f"""[Service]
RootDirectory={root}
BindPaths={out}:/out
BindPaths={data}:/srv
EnvironmentFile={env}
ExecStart=/bin/sh -c 'echo $GREETING >> /out/greeting; ls /srv >> /out/data; exec sleep 1000'
Restart=always
RestartSec=1s
[Container]
KeepReady=yes
Network=none
[Install]
WantedBy=multi-user.target
""")
        trunc = os.path.join(sb.work, "trunc.log")
        sb.write_unit("trunc.service", f"""[Service]
RootDirectory={root}
StandardOutput=truncate:{trunc}
ExecStart=/bin/sh -c 'echo ran; exec sleep 1000'
[Container]
KeepReady=yes
[Install]
WantedBy=multi-user.target
""")
        sb.start()
        ok = sb.wait_for(lambda: read(out + "/greeting"), 10, "the first start")
        cg = sandbox_cgroup(sb) or "/nonexistent"
        sb.wait_for(lambda: "ran" in read(trunc), 10, "trunc.service's output")
        sb.ctl("stop", "trunc.service", check=True)
        sb.wait_state("trunc.service", "inactive", 10)
        time.sleep(0.3)
        t.ok(read(os.path.join(cg, "trunc.service", "cgroup.procs")) == "" and
             read(trunc) == "ran\n",
             "KeepReady=: nothing is prepared with a truncate: output (the last run's stays)",
             read(os.path.join(cg, "trunc.service", "cgroup.procs")) + repr(read(trunc)))
        procs = os.path.join(cg, "ready.service", "cgroup.procs")
        t.ok(ok and read(procs).split() == [str(main_pid(sb, "ready.service"))] != ["0"],
             "KeepReady=: nothing waits while the service runs", read(procs))

        # A crash: during RestartSec= the next process is prepared in the service's cgroup,
        # and the restart runs it.
        first = main_pid(sb, "ready.service")
        if first > 0:
            os.kill(first, 9)
        ok = sb.wait_for(lambda: sb.state_of("ready.service") in ("activating", "auto-restart") and
                         len(read(procs).split()) == 1 and read(procs).split() != [str(first)],
                         5, "a process waiting during RestartSec=")
        waiting = read(procs).split()
        t.ok(ok, "KeepReady=: while a restart is pending the next process waits in the "
             "service's cgroup", f"{read(procs)} {sb.state_of('ready.service')}")
        ok = sb.wait_for(lambda: read(out + "/greeting").count("one") == 2, 10, "the restart")
        t.ok(ok and waiting and main_pid(sb, "ready.service") == int(waiting[0]),
             "... and the restart runs it", f"waiting {waiting}, main "
             f"{main_pid(sb, 'ready.service')}\n" + sb.service_log("ready.service"))
        t.ok(sb.state_of("ready.service") == "active", "... which keeps running")

        def stopped():
            """Stops it; returns the process then waiting in its cgroup."""
            sb.ctl("stop", "ready.service", check=True)
            ok = sb.wait_state("ready.service", "inactive", 10) and \
                sb.wait_for(lambda: len(read(procs).split()) == 1, 5)
            return read(procs).split() if ok else []

        def started_afresh(waiting, file, word, what):
            sb.ctl("start", "ready.service", check=True)
            ok = sb.wait_for(lambda: word in read(out + file), 10, "the start")
            main = main_pid(sb, "ready.service")
            t.ok(ok and waiting and main != int(waiting[0]), what,
                 read(out + file) + f"waiting {waiting}, main {main}")

        # Stopped: the next start waits; an EnvironmentFile= changed meanwhile drops it.
        waiting = stopped()
        t.ok(waiting, "KeepReady=: a stopped service's next process waits in its cgroup",
             read(procs))
        open(env, "w").write("GREETING=two\n")
        started_afresh(waiting, "/greeting", "two",
                       "... a changed EnvironmentFile= drops it: the start reads the new one")

        # A bound directory removed and made again while it waits: dropped too.
        waiting = stopped()
        shutil.rmtree(data)
        os.makedirs(data)
        open(os.path.join(data, "fresh"), "w").close()
        started_afresh(waiting, "/data", "fresh",
                       "... so does a BindPaths= directory made anew: the start binds the new one")

        # A live settings change while it waits: dropped, and the start gets the new one.
        waiting = stopped()
        sb.ctl("set-property", "--runtime", "ready.service", "Nice=7", check=True)
        sb.wait_for(lambda: read(procs).split() not in ([], waiting), 5)
        sb.ctl("start", "ready.service", check=True)
        sb.wait_state("ready.service", "active", 10)
        main = main_pid(sb, "ready.service")
        nice = read(f"/proc/{main}/stat").rsplit(")", 1)[-1].split()[16:17] if main else []
        t.ok(waiting and main != int(waiting[0]) and nice == ["7"],
             "... and so does SetProperties: the start has the new Nice=",
             f"waiting {waiting}, main {main}, nice {nice}")
        stopped()
        sb.stop()
        t.ok("Cannot remove cgroup" not in sb.output,
             "the waiting process is gone before vigil removes its cgroups", sb.output)


for test in [test_syscalls, test_keep_ready, test_directory_root, test_image_store, test_root_image_and_mounts, test_escapes,
             test_privileges]:
    try:
        test()
    except Exception as e:  # a broken test must not hide the others
        t.ok(False, f"{test.__name__} raised", repr(e))
t.done()
