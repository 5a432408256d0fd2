"""The vm test tier's harness: builds (or reuses) the test appliance, boots it headless in qemu
through image/run-vm, runs shell commands in the guest over its test channel (a root shell on
the guest's second serial port), watches the console, powers the guest off and always kills
qemu at the end.

Environment:
  VIGIL_BUILD=DIR     the meson build directory with vigil, vigilctl and the test workloads
                      (default build); the appliances and the boots' work dirs go there too
  VIGIL_VM_APPLIANCE  an already built appliance directory to use instead of building one
  VIGIL_VM_RESOURCES_APPLIANCE  the same for the resource-test appliance
  VIGIL_VM_KEEP=1     keep each boot's work directory (console log, data disk) even on success
  VIGIL_VM_SLOW=N     multiply every timeout by N (a very busy machine)
  VIGIL_KVM=1         passed on to image/run-vm (KVM instead of TCG)

The test appliance trusts the update signing key of update_key() (made once with minisign
under the build directory) when minisign is installed. DataDisk reads and writes a data disk
image offline (debugfs), e.g. to stage update bundles before a boot.
"""

import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN_VM = os.path.join(ROOT, "image", "run-vm")
BUILD = os.path.join(ROOT, "image", "build")
TEST_APPLIANCE = "gameserver-test"
BUILD_DIR = os.path.abspath(os.environ.get("VIGIL_BUILD") or os.path.join(ROOT, "build"))
WORK = os.path.join(BUILD_DIR, "vm-test")
# The resource-control test appliance: tests/vm/resources/ plus the stock policies and the
# workloads of tests/vm/vres.c, staged into the build directory.
RESOURCES_SRC = os.path.join(ROOT, "tests", "vm", "resources")
RESOURCES_APPLIANCE = "resources-test"
VRES = os.path.join(BUILD_DIR, "tests", "vm", "vres")
# The test appliance's update signing key pair (minisign, no password): NAME.pub and NAME.key.
UPDATE_KEY_DIR = os.path.join(BUILD_DIR, "vm-update-key")
UPDATE_KEY_NAME = "vigil-vm-test"

SLOW = float(os.environ.get("VIGIL_VM_SLOW", "1") or 1)
# Under TCG a boot takes 10-20 s on an idle machine; a busy CI machine can take many times that.
BOOT_TIMEOUT = 180 * SLOW
# vigil writes its first console line within seconds of the kernel starting it; a console
# still empty after this long is a guest that hung in the kernel's early boot under TCG
# (both vCPUs spinning, seen rarely on a loaded host): that boot is started again.
EARLY_HANG = 60 * SLOW
EARLY_HANG_RETRIES = 2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


class Skip(Exception):
    """The tier cannot run here (nothing to boot); tests/vm/run exits 77."""


class VMError(Exception):
    pass


def log(msg):
    print(f"# {msg}", flush=True)


def _newest_mtime(paths):
    newest = 0.0
    for p in paths:
        if os.path.isdir(p):
            for d, _, files in os.walk(p):
                for f in files:
                    try:
                        newest = max(newest, os.stat(os.path.join(d, f)).st_mtime)
                    except OSError:
                        pass
        elif os.path.exists(p):
            newest = max(newest, os.stat(p).st_mtime)
    return newest


def appliance_dir():
    """The directory of the test appliance, built with --test-channel when missing or older
    than its inputs (vigil, vigilctl, image/build and image/appliances/)."""
    env = os.environ.get("VIGIL_VM_APPLIANCE")
    if env:
        if not os.path.isfile(os.path.join(env, "appliance.json")):
            raise VMError(f"VIGIL_VM_APPLIANCE={env}: no appliance.json there")
        return os.path.abspath(env)
    out = os.path.join(BUILD_DIR, "appliance", TEST_APPLIANCE)
    inputs = [os.path.join(BUILD_DIR, "init", "vigil"),
              os.path.join(BUILD_DIR, "init", "vigilctl"),
              BUILD, os.path.join(ROOT, "image", "appliances"), os.path.join(ROOT, "policies")]
    extra = []
    key = update_key()
    if key:
        extra = ["--trust", key[0]]
        inputs.append(key[0])
    return _build_appliance("gameserver", out, inputs, extra=extra)


def update_key():
    """The update signing key pair the test appliance trusts: (public key path, secret key
    path), made with `minisign -G -W` (no password) the first time; None without minisign."""
    pub = os.path.join(UPDATE_KEY_DIR, UPDATE_KEY_NAME + ".pub")
    sec = os.path.join(UPDATE_KEY_DIR, UPDATE_KEY_NAME + ".key")
    if os.path.isfile(pub) and os.path.isfile(sec):
        return pub, sec
    if not shutil.which("minisign"):
        log("minisign is not installed: the test appliance trusts no update key")
        return None
    os.makedirs(UPDATE_KEY_DIR, exist_ok=True)
    # made beside the final names and renamed: a half-made pair is never used
    tmp = os.path.join(UPDATE_KEY_DIR, f".new-{os.getpid()}")
    r = subprocess.run(["minisign", "-G", "-W", "-f", "-p", tmp + ".pub", "-s", tmp + ".key"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise VMError(f"minisign -G -W failed (exit {r.returncode}): {r.stdout.strip()}")
    os.replace(tmp + ".key", sec)
    os.replace(tmp + ".pub", pub)
    log(f"made the update signing key {pub}")
    return pub, sec


def resources_appliance_dir():
    """The resource-control test appliance (tests/vm/resources/ with the stock policies of
    policies/ and the vres workloads from the build directory), built with --test-channel
    when missing or older than its inputs."""
    env = os.environ.get("VIGIL_VM_RESOURCES_APPLIANCE")
    if env:
        if not os.path.isfile(os.path.join(env, "appliance.json")):
            raise VMError(f"VIGIL_VM_RESOURCES_APPLIANCE={env}: no appliance.json there")
        return os.path.abspath(env)
    if not os.access(VRES, os.X_OK):
        raise VMError(f"{VRES} is missing: build with meson first (meson compile -C "
                      f"{BUILD_DIR})")
    out = os.path.join(BUILD_DIR, "appliance", RESOURCES_APPLIANCE)
    policies = os.path.join(ROOT, "policies")
    inputs = [os.path.join(BUILD_DIR, "init", "vigil"),
              os.path.join(BUILD_DIR, "init", "vigilctl"), VRES, BUILD, RESOURCES_SRC,
              *[os.path.join(policies, f) for f in os.listdir(policies) if f.endswith(".policy")]]
    stage = os.path.join(BUILD_DIR, "vm-resources-appliance")

    def prepare():
        shutil.rmtree(stage, ignore_errors=True)
        shutil.copytree(RESOURCES_SRC, stage)
        os.makedirs(os.path.join(stage, "policies"), exist_ok=True)
        for f in os.listdir(policies):
            if f.endswith(".policy"):
                shutil.copy(os.path.join(policies, f), os.path.join(stage, "policies", f))
        bindir = os.path.join(stage, "rootfs", "usr", "lib", "vigil-test")
        os.makedirs(bindir, exist_ok=True)
        shutil.copy(VRES, os.path.join(bindir, "vres"))
        return stage
    return _build_appliance(None, out, inputs, prepare)


def _build_appliance(name, out, inputs, prepare=None, extra=()):
    """Builds an appliance (NAME, or the directory prepare() returns) into out with the test
    channel and the extra image/build options, unless out is newer than every input."""
    conf = os.path.join(out, "appliance.json")
    if not os.access(BUILD, os.X_OK):
        if os.path.isfile(conf):
            return out
        raise Skip("image/build does not exist yet: no appliance to boot")
    if os.path.isfile(conf) and os.stat(conf).st_mtime >= _newest_mtime(inputs):
        log(f"reusing {out}")
        return out
    app = prepare() if prepare else name
    cmd = [BUILD, "--appliance", app, "--test-channel", "--out", out,
           "--vigil-build", BUILD_DIR, "--cache-dir", os.path.join(BUILD_DIR, "appliance-cache"),
           *extra]
    log("building the test appliance: " + " ".join(cmd))
    t = time.monotonic()
    r = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    if r.returncode != 0 or not os.path.isfile(conf):
        for line in r.stdout.splitlines()[-40:]:
            log("  " + line)
        raise VMError(f"image/build failed (exit {r.returncode})")
    log(f"built in {time.monotonic() - t:.1f} s")
    return out


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class VM:
    """One boot of the appliance. Use as a context manager: qemu is killed on exit whatever
    happened. Several VM objects may share one data disk (persistence across boots).
    interactive: the console is on this terminal (not in console.log) and the game port is
    the appliance's own (appliance.json), for image/demo; the test channel works as ever."""

    _count = 0

    def __init__(self, adir, name=None, data=None, fresh_data=True, interactive=False):
        VM._count += 1
        self.interactive = interactive
        self.adir = adir
        self.name = name or f"boot{VM._count}"
        self.work = os.path.join(WORK, self.name)
        shutil.rmtree(self.work, ignore_errors=True)
        os.makedirs(self.work)
        self.console_log = os.path.join(self.work, "console.log")
        self.sock_path = os.path.join(self.work, "tc.sock")
        self.monitor_path = os.path.join(self.work, "monitor.sock")
        self.qemu_log = os.path.join(self.work, "qemu.log")
        import json
        with open(os.path.join(adir, "appliance.json")) as f:
            self.conf = json.load(f)
        src = os.path.join(adir, self.conf["data"])
        self.data = data or os.path.join(self.work, "data.img")
        if fresh_data or not os.path.exists(self.data):
            # never boot the builder's pristine disk: every run starts from a copy
            subprocess.run(["cp", "--sparse=always", src, self.data], check=True)
        self.proc = None
        self.sock = None
        self.buf = b""
        self.host_port = None
        self.t_start = None
        self.t_exit = None
        self.failed = False
        self._seq = 0
        self.early_hangs = 0

    # ---- lifecycle ----

    def start(self):
        for attempt in range(5):
            cmd = [RUN_VM, "--appliance", self.adir, "--test-channel", self.sock_path,
                   "--data", self.data, "--monitor", self.monitor_path]
            if self.interactive:
                game = self.conf.get("game") or {}
                self.host_port = next((f["host"] for f in self.conf.get("forward", [])
                                       if f["guest"] == game.get("port")), None)
            else:
                self.host_port = free_udp_port()
                cmd += ["--headless", "--console-log", self.console_log,
                        "--host-port", str(self.host_port)]
            self.t_start = time.monotonic()
            self.t_exit = None
            with open(self.qemu_log, "w") as qlog:
                # interactive: the console and qemu's errors on this terminal (qemu sets it
                # raw, and restores it when it exits)
                io = {} if self.interactive else {"stdin": subprocess.DEVNULL, "stdout": qlog,
                                                  "stderr": subprocess.STDOUT}
                self.proc = subprocess.Popen(cmd, start_new_session=True, **io)
            # qemu fails at once when the port was taken meanwhile: try another
            deadline = time.monotonic() + 30 * SLOW
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if os.path.exists(self.sock_path):
                    log(f"{self.name}: qemu pid {self.proc.pid}, game port 127.0.0.1:"
                        f"{self.host_port}, work dir {self.work}")
                    return self
                time.sleep(0.05)
            err = self._read(self.qemu_log)
            self.kill()
            if self.interactive:
                raise VMError(f"qemu did not start (exit {self.proc.returncode})")
            if "host forwarding" not in err and "cannot bind" not in err:
                raise VMError(f"qemu did not start: {err.strip()[-500:]}")
        raise VMError("qemu could not bind a host port after 5 attempts")

    def __enter__(self):
        return self.start()

    def qemu_pids(self):
        """The qemu processes below run-vm (it may run qemu in a network namespace)."""
        found, todo = [], [self.proc.pid] if self.proc else []
        while todo:
            pid = todo.pop()
            try:
                with open(f"/proc/{pid}/task/{pid}/children") as f:
                    kids = [int(x) for x in f.read().split()]
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().startswith("qemu-system"):
                        found.append(pid)
            except OSError:
                continue
            todo += kids
        return found

    def boost_host_priority(self, vcpu_nice=-5, other_nice=-10):
        """Real hardware delivers timer interrupts whatever else runs; under TCG they come
        from qemu's main loop thread, which the busy vCPU threads and other load on a small
        host can starve. For latency measurements: qemu's vCPU threads get vcpu_nice and its
        other threads (main loop, I/O) other_nice on the host. Returns the threads changed."""
        n = 0
        for pid in self.qemu_pids():
            for tid in os.listdir(f"/proc/{pid}/task"):
                try:
                    with open(f"/proc/{pid}/task/{tid}/comm") as f:
                        comm = f.read().strip()
                    os.setpriority(os.PRIO_PROCESS, int(tid),
                                   vcpu_nice if "/TCG" in comm or "/KVM" in comm else other_nice)
                    n += 1
                except OSError:
                    pass
        return n

    def __exit__(self, *exc):
        if exc[0] is not None:
            self.failed = True
        self.kill()
        if not self.failed and os.environ.get("VIGIL_VM_KEEP") != "1":
            for f in ("data.img", "tc.sock"):
                try:
                    if not (f == "data.img" and self.data != os.path.join(self.work, f)):
                        os.unlink(os.path.join(self.work, f))
                except OSError:
                    pass
        return False

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        if self.sock:
            self.sock.close()
            self.sock = None
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        if self.proc and self.t_exit is None:
            self.t_exit = time.monotonic()

    def wait_exit(self, timeout):
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self.t_exit = time.monotonic()
        return self.proc.returncode

    def elapsed(self):
        return time.monotonic() - self.t_start

    # ---- console ----

    @staticmethod
    def _read(path):
        try:
            with open(path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def console(self):
        return self._read(self.console_log).replace("\r", "")

    def wait_console(self, regex, timeout=BOOT_TIMEOUT, start=0):
        """Waits for regex on the console (from offset start); returns the match."""
        pat = re.compile(regex, re.M)
        deadline = time.monotonic() + timeout
        while True:
            m = pat.search(self.console(), start)
            if m:
                return m
            if not self.alive():
                raise VMError(f"qemu exited while waiting for /{regex}/ on the console")
            if time.monotonic() > deadline:
                raise VMError(f"no /{regex}/ on the console after {timeout:.0f} s")
            time.sleep(0.1)

    # ---- test channel ----

    def _connect(self, deadline):
        while self.sock is None:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.sock_path)
            except OSError:
                s.close()
                if not self.alive():
                    raise VMError("qemu exited before the test channel was connected")
                if time.monotonic() > deadline:
                    raise VMError("cannot connect to the test channel socket")
                time.sleep(0.1)
                continue
            s.setblocking(False)
            self.sock = s

    def _send(self, data):
        self.sock.setblocking(True)
        try:
            self.sock.sendall(data)
        finally:
            self.sock.setblocking(False)

    def _fill(self, wait):
        """Reads what the channel has, waiting up to `wait` seconds for something."""
        import select
        r, _, _ = select.select([self.sock], [], [], wait)
        if r:
            try:
                d = self.sock.recv(65536)
            except BlockingIOError:
                return
            if not d:
                raise VMError("the test channel closed (qemu exited?)")
            self.buf += d

    def _marker(self, tag):
        """A marker as the shell prints it and the command text that prints it. The quotes
        keep the echo of the command line (tty echo, line editing) from matching."""
        self._seq += 1
        word = f"__{tag}_{os.getpid()}_{self._seq}__"
        return word, f'{word[:3]}""{word[3:]}'

    def sync(self, timeout=BOOT_TIMEOUT):
        """Waits until the guest's shell answers on the channel; returns the seconds since
        qemu started. The shell may not run yet (or be restarted): re-ask every 2 s."""
        deadline = time.monotonic() + timeout
        self._connect(deadline)
        word, text = self._marker("SYNC")
        reconnect = time.monotonic() + 30 * SLOW
        while True:
            if (not self.interactive and self.elapsed() > EARLY_HANG and not self.console()
                    and self.early_hangs < EARLY_HANG_RETRIES):
                self.early_hangs += 1
                self._save_hang_state()
                log(f"{self.name}: no console output {self.elapsed():.0f} s after qemu started: "
                    f"the kernel hung before vigil ran; booting again (registers in "
                    f"{self.work}/hang-{self.early_hangs}.txt)")
                self.kill()
                self.start()
                deadline = time.monotonic() + timeout
                self._connect(deadline)
                reconnect = time.monotonic() + 30 * SLOW
            if time.monotonic() > reconnect:
                # a silent channel: start over with a new connection to qemu's socket (its
                # serial port's input may have stalled on bytes sent before the guest opened it)
                log(f"{self.name}: the test channel is silent; connecting to it again")
                self.sock.close()
                self.sock = None
                self.buf = b""
                self._connect(deadline)
                reconnect = time.monotonic() + 30 * SLOW
            # a fresh line first: whatever half line the tty collected is discarded
            self._send(f"\n echo {text}\n".encode())
            until = time.monotonic() + 2
            while time.monotonic() < until:
                self._fill(0.2)
                i = self.buf.find(word.encode())
                if i >= 0:
                    self.buf = self.buf[i + len(word):]
                    # quieter channel: no echo, no prompts, no line editing (best effort)
                    self.run("stty -echo 2>/dev/null; set +o emacs 2>/dev/null; "
                             "set +o vi 2>/dev/null; PS1=''; PS2=''; true", timeout=30 * SLOW)
                    return self.elapsed()
            if not self.alive():
                raise VMError("qemu exited while waiting for the test channel")
            if time.monotonic() > deadline:
                raise VMError(f"the test channel did not answer within {timeout:.0f} s")

    def _save_hang_state(self):
        """The vCPUs' registers from qemu's monitor, for a hung boot's post-mortem."""
        out = []
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as m:
                m.settimeout(5)
                m.connect(self.monitor_path)
                for c in ("info status", "cpu 0", "info registers", "cpu 1", "info registers"):
                    m.sendall((c + "\n").encode())
                    time.sleep(0.5)
                    out.append(m.recv(1 << 20).decode(errors="replace"))
        except OSError as e:
            out.append(f"monitor: {e}")
        with open(os.path.join(self.work, f"hang-{self.early_hangs}.txt"), "w") as f:
            f.write("\n".join(out))

    def run(self, cmd, timeout=60):
        """Runs cmd with /bin/sh in the guest; returns (exit status, output). The command runs
        in a subshell with stdin from /dev/null and stderr merged into stdout."""
        if self.sock is None:
            self.sync()
        timeout *= SLOW
        begin, btext = self._marker("BEGIN")
        done, dtext = self._marker("DONE")
        line = f"echo {btext}; ( {cmd}\n) </dev/null 2>&1; echo {dtext}$?\n"
        self._send(line.encode())
        pat = re.compile(re.escape(begin.encode()) + rb"\r?\n(.*?)" + re.escape(done.encode())
                         + rb"(\d+)", re.S)
        deadline = time.monotonic() + timeout
        while True:
            m = pat.search(self.buf)
            if m:
                self.buf = self.buf[m.end():]
                out = m.group(1).decode(errors="replace").replace("\r", "")
                return int(m.group(2)), out
            if time.monotonic() > deadline:
                raise VMError(f"guest command timed out after {timeout:.0f} s: {cmd}")
            self._fill(0.2)

    def check(self, cmd, timeout=60):
        """run() that raises unless the command exits 0; returns its output."""
        status, out = self.run(cmd, timeout)
        if status != 0:
            raise VMError(f"guest command failed (exit {status}): {cmd}\n{out}")
        return out

    def send_only(self, cmd):
        """Writes a command without waiting for it (for commands that end the machine)."""
        if self.sock is None:
            self.sync()
        self._send(f"{cmd}\n".encode())

    def monitor(self, command):
        """Sends one command to the qemu monitor (e.g. "sendkey ctrl-alt-delete")."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as m:
            m.settimeout(10)
            m.connect(self.monitor_path)
            m.sendall(command.encode() + b"\n")
            time.sleep(0.2)  # the monitor acts on the line; its echo does not matter

    # ---- game and power ----

    def game_query(self, timeout=2.0):
        import twquery
        return twquery.query("127.0.0.1", self.host_port, timeout=timeout)

    def wait_game(self, timeout=BOOT_TIMEOUT):
        """Waits until the game server answers through the forwarded port; returns its info."""
        try:
            import twquery
        except ImportError as e:
            raise VMError(f"tests/vm/twquery.py cannot be imported: {e}")
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if not self.alive():
                raise VMError("qemu exited while waiting for the game server")
            try:
                return twquery.query("127.0.0.1", self.host_port, timeout=2.0)
            except Exception as e:  # noqa: BLE001 - any failure means "not yet"
                last = e
                time.sleep(0.2)
        raise VMError(f"the game server did not answer within {timeout:.0f} s ({last})")

    def poweroff(self, timeout=BOOT_TIMEOUT):
        """Asks vigil to power off (SIGUSR2 to PID 1) and waits for qemu to exit; returns the
        seconds it took. Raises when qemu is still running after timeout."""
        t = time.monotonic()
        self.send_only("kill -USR2 1")
        rc = self.wait_exit(timeout)
        if rc is None:
            raise VMError(f"qemu still running {timeout:.0f} s after kill -USR2 1")
        if self.sock:
            self.sock.close()
            self.sock = None
        return time.monotonic() - t

    # ---- diagnostics ----

    def diagnostics(self, lines=80):
        """The console's tail and the guest's /var/log/vigil/* (when the channel still answers),
        as TAP comment lines."""
        out = [f"--- {self.name}: console ({self.console_log}), last {lines} lines ---"]
        out += self.console().splitlines()[-lines:]
        out += [f"--- {self.name}: qemu ({self.qemu_log}) ---"]
        out += self._read(self.qemu_log).splitlines()[-20:]
        if self.alive() and self.sock is not None:
            try:
                _, logs = self.run("for f in /var/log/vigil/*; do echo \"=== $f\"; "
                                   "tail -n 40 \"$f\"; done; vigilctl list", timeout=30)
                out += [f"--- {self.name}: /var/log/vigil ---"] + logs.splitlines()
            except Exception as e:  # noqa: BLE001
                out.append(f"(could not read /var/log/vigil: {e})")
        return "\n".join("# " + line for line in out)


def step(tap, vm, desc, fn):
    """Runs fn() as one TAP line: ok when it returns without raising (and does not return
    False); otherwise not ok, with the error and the VM's diagnostics. Returns fn's result or
    None."""
    try:
        r = fn()
    except Exception as e:  # noqa: BLE001
        vm.failed = True
        tap.ok(False, desc, f"{type(e).__name__}: {e}")
        print(vm.diagnostics(), flush=True)
        return None
    if r is False:
        vm.failed = True
        tap.ok(False, desc)
        print(vm.diagnostics(), flush=True)
        return None
    tap.ok(True, desc)
    return r


def fsck_clean(image):
    """e2fsck -fn and dumpe2fs -h of a data disk on the host: (clean?, report)."""
    r = subprocess.run(["e2fsck", "-fn", image], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    d = subprocess.run(["dumpe2fs", "-h", image], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    features = "".join(line for line in d.stdout.splitlines() if line.startswith("Filesystem features"))
    state = "".join(line for line in d.stdout.splitlines() if line.startswith("Filesystem state"))
    ok = r.returncode == 0 and "needs_recovery" not in features and "clean" in state
    return ok, f"e2fsck -fn exit {r.returncode}\n{r.stdout.strip()}\n{features}\n{state}"


class DataDiskError(VMError):
    pass


class DataDisk:
    """Offline access to a data disk image (ext4; the guest mounts it on /var) through debugfs,
    while no qemu uses it. Paths are absolute inside the disk: the guest's /var/lib/x is
    /lib/x here. recover() first after a power cut: debugfs does not replay the journal."""

    def __init__(self, path):
        self.path = path

    def _debugfs(self, cmd, write=False, check=True):
        r = subprocess.run(["debugfs", *(["-w"] if write else []), "-R", cmd, self.path],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # debugfs exits 0 whatever happened: its complaints are the stderr lines after the
        # version banner
        err = [line for line in r.stderr.decode(errors="replace").splitlines()
               if line.strip() and not line.startswith("debugfs ")]
        if check and (r.returncode != 0 or err):
            raise DataDiskError(f"{self.path}: debugfs {cmd!r}: "
                                f"{'; '.join(err) or f'exit {r.returncode}'}")
        return r.stdout, err

    def needs_recovery(self):
        d = subprocess.run(["dumpe2fs", "-h", self.path], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        lines = d.stdout.splitlines()
        feats = [line for line in lines if line.startswith("Filesystem features")]
        state = [line for line in lines if line.startswith("Filesystem state")]
        return (d.returncode != 0 or any("needs_recovery" in f for f in feats)
                or not any(line.split()[-1] == "clean" for line in state))

    def recover(self):
        """After a cut: `e2fsck -fy` (replays the journal, clears orphaned inodes) when the
        file system is not clean. Returns (e2fsck exit status or None when it was clean,
        its output). Raises when e2fsck could not repair it (exit 4 or more)."""
        if not self.needs_recovery():
            return None, ""
        r = subprocess.run(["e2fsck", "-fy", self.path], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        if r.returncode >= 4:
            raise DataDiskError(f"e2fsck -fy {self.path}: exit {r.returncode}\n{r.stdout}")
        return r.returncode, r.stdout

    def kind(self, path):
        """"file", "dir", "symlink", another debugfs type word, or None when missing."""
        out, err = self._debugfs(f"stat {path}", check=False)
        m = re.search(rb"Type: (\S+)", out)
        if err or not m:
            return None
        return {"regular": "file", "directory": "dir"}.get(m.group(1).decode(),
                                                           m.group(1).decode())

    def exists(self, path):
        return self.kind(path) is not None

    def listdir(self, path):
        """The names in a directory (without . and ..), sorted; None when it is missing."""
        out, err = self._debugfs(f"ls -p {path}", check=False)
        if err:
            return None
        names = []
        for line in out.decode(errors="replace").splitlines():
            f = line.split("/")  # /INODE/MODE/UID/GID/NAME/SIZE/
            if len(f) >= 7 and f[5] not in (".", ".."):
                names.append(f[5])
        return sorted(names)

    def readlink(self, path):
        """A symbolic link's target, or None when path is missing or not a link."""
        out, err = self._debugfs(f"stat {path}", check=False)
        if err or b"Type: symlink" not in out:
            return None
        m = re.search(rb'Fast link dest: "(.*)"', out)
        if m:
            return m.group(1).decode(errors="replace")
        # a long target is kept in a data block, as a file's contents
        data = self.read(path)
        return data.decode(errors="replace") if data is not None else None

    def read(self, path):
        """A file's contents (bytes), or None when it is missing."""
        if self.kind(path) is None:
            return None
        import tempfile
        with tempfile.TemporaryDirectory(prefix="datadisk-") as d:
            out = os.path.join(d, "f")
            self._debugfs(f"dump {path} {out}")
            with open(out, "rb") as f:
                return f.read()

    def sha256(self, path):
        """The SHA-256 (hex) of a file, or None when it is missing."""
        data = self.read(path)
        return hashlib.sha256(data).hexdigest() if data is not None else None

    def mkdir_p(self, path):
        cur = ""
        for part in path.strip("/").split("/"):
            cur += "/" + part
            if self.kind(cur) is None:
                self._debugfs(f"mkdir {cur}", write=True)

    def write(self, src, path, mode=0o644):
        """Copies the host file src to path (replacing it; the directory must exist), owned
        by root with mode."""
        if self.kind(path) is not None:
            self._debugfs(f"rm {path}", write=True)
        self._debugfs(f"write {src} {path}", write=True)
        self._debugfs(f"sif {path} mode 0{0o100000 | mode:o}", write=True)
        self._debugfs(f"sif {path} uid 0", write=True)
        self._debugfs(f"sif {path} gid 0", write=True)

    def remove(self, path):
        if self.kind(path) is not None:
            self._debugfs(f"rm {path}", write=True)
