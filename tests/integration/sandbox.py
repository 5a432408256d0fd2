"""A vigil --sandbox for integration tests: units in a temp dir, vigil as PID 1 of its own
namespaces, vigilctl against its private socket, TAP output."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("VIGIL_BUILD", os.path.join(os.path.dirname(__file__), "../../build"))
VIGIL = os.path.join(BUILD, "init/vigil")
VIGILCTL = os.path.join(BUILD, "init/vigilctl")


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, name, detail=None):
        self.n += 1
        print(("ok" if cond else "not ok") + f" {self.n} - {name}", flush=True)
        if not cond:
            self.failed += 1
            for line in str(detail or "").splitlines():
                print(f"#   {line}", flush=True)
        return cond

    def note(self, text):
        for line in str(text).splitlines():
            print(f"# {line}", flush=True)

    def done(self):
        print(f"1..{self.n}", flush=True)
        sys.exit(1 if self.failed else 0)

    def run(self, tests):
        """Runs the tests (those named on the command line, if any; a test that raises is a
        failure, not the end of the suite), then done()."""
        for test in tests:
            if len(sys.argv) > 1 and test.__name__ not in sys.argv[1:]:
                continue
            try:
                test()
            except Exception as e:
                self.ok(False, f"{test.__name__} ran", repr(e))
        self.done()


def require_root():
    if os.geteuid() != 0:
        print("1..0 # SKIP the sandbox needs root (PID and mount namespaces)")
        sys.exit(77)


class Sandbox:
    def __init__(self, units, conf=None, policies=None):
        self.dir = tempfile.mkdtemp(prefix="vigil-sandbox.")
        self.config = os.path.join(self.dir, "config")
        self.state = os.path.join(self.dir, "state")
        self.runtime = os.path.join(self.dir, "run")
        self.work = os.path.join(self.dir, "work")  # for the services' own files
        os.makedirs(os.path.join(self.config, "units"))
        os.makedirs(os.path.join(self.config, "policies"))
        os.makedirs(self.work)
        for name, text in units.items():
            self.write_unit(name, text)
        for name, text in (policies or {}).items():
            with open(os.path.join(self.config, "policies", name), "w") as f:
                f.write(text.replace("@WORK@", self.work))
        if conf:
            with open(os.path.join(self.config, "vigil.conf"), "w") as f:
                f.write(conf)
        self.proc = None
        self.output = ""

    def write_unit(self, name, text):
        with open(os.path.join(self.config, "units", name), "w") as f:
            f.write(text.replace("@WORK@", self.work))

    @property
    def socket(self):
        return os.path.join(self.runtime, "private")

    def start(self, wait_socket=True, env=None):
        self.log = open(os.path.join(self.dir, "vigil.log"), "w+")
        self.proc = subprocess.Popen(
            [VIGIL, "--sandbox", "--config-dir", self.config, "--state-dir", self.state,
             "--runtime-dir", self.runtime],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=dict(os.environ, **(env or {})))
        if wait_socket:
            self.wait_for(lambda: os.path.exists(self.socket), 10, "the private socket")
        return self

    def wait_for(self, cond, timeout, what="a condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return True
            if self.proc and self.proc.poll() is not None:
                raise RuntimeError(f"vigil exited ({self.proc.returncode}) waiting for {what}:\n"
                                   + self.vigil_log())
            time.sleep(0.02)
        return False

    def ctl(self, *args, check=False):
        r = subprocess.run([VIGILCTL, "--address", f"unix:path={self.socket}", *args],
                           capture_output=True, text=True, timeout=30)
        if check and r.returncode != 0:
            raise RuntimeError(f"vigilctl {' '.join(args)}: exit {r.returncode}: {r.stderr}")
        return r

    def ctl_tty(self, *args, timeout=30):
        """vigilctl with its stdout on a pseudo-terminal (stderr piped, as a terminal user
        would redirect neither): (exit status, what reached the terminal, stderr)."""
        import pty
        import select
        master, slave = pty.openpty()
        try:
            p = subprocess.Popen([VIGILCTL, "--address", f"unix:path={self.socket}", *args],
                                 stdout=slave, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
            os.close(slave)
            slave = None
            out = b""
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if not select.select([master], [], [], 0.1)[0]:
                    if p.poll() is not None:
                        break
                    continue
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every writer closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
            p.wait(max(deadline - time.monotonic(), 1))
            return p.returncode, out.decode(errors="replace"), p.stderr.read().decode()
        finally:
            os.close(master)
            if slave is not None:
                os.close(slave)

    def status(self, name):
        """(active state, sub state, result, restarts) from ListServices."""
        import json
        r = self.ctl("--json", "list")
        if r.returncode != 0:
            return None
        for s in json.loads(r.stdout):
            if s["name"] == name:
                return s
        return None

    def state_of(self, name):
        s = self.status(name)
        return s["active"] if s else None

    def wait_state(self, name, state, timeout=10):
        return self.wait_for(lambda: self.state_of(name) == state, timeout,
                             f"{name} to be {state}")

    def service_log(self, name):
        try:
            with open(os.path.join(self.state, "log", name + ".log")) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def vigil_log(self):
        if not self.proc:
            return ""
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def pid(self):
        """The host pid of the sandbox's PID 1 (the child of the vigil we started)."""
        with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
            return int(f.read().split()[0])

    def namespace_pids(self):
        """Host pids of every process in the sandbox's PID namespace."""
        ns = os.readlink(f"/proc/{self.pid()}/ns/pid")
        pids = []
        for p in os.listdir("/proc"):
            if p.isdigit():
                try:
                    if os.readlink(f"/proc/{p}/ns/pid") == ns:
                        pids.append(int(p))
                except OSError:
                    pass
        return pids

    def stop(self, timeout=30):
        """SIGTERM, wait; returns vigil's exit status."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.output = self.vigil_log()
        return rc

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        self.cleanup()


def read_times(path):
    """Floats, one per line (seconds), written by `date +%s.%N >> path`."""
    try:
        with open(path) as f:
            return [float(x) for x in f.read().split()]
    except FileNotFoundError:
        return []
