#!/usr/bin/python3
"""What meson installs besides the programs: the man pages (each renders with groff and no
warning) and vigilctl's bash completion (driven through a real interactive bash on a
pseudo-terminal, so that bash splits the words itself, with service names from a vigil in
the sandbox when run as root)."""

import json
import os
import pty
import select
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from sandbox import BUILD, Sandbox, Tap  # noqa: E402

t = Tap()

VERBS = {"list", "status", "start", "stop", "restart", "kill", "logs", "set-property", "reload",
         "reset-failed", "reboot", "poweroff", "update", "verify"}
PAGES = {"vigil.8": "man8", "vigilctl.1": "man1", "vigil.unit.5": "man5"}


def installed():
    """{source path: installed path} from meson's own plan."""
    r = subprocess.run(["meson", "introspect", "--installed", BUILD], capture_output=True,
                       text=True, timeout=60)
    return json.loads(r.stdout) if r.returncode == 0 else {}


class Bash:
    """An interactive bash on a pseudo-terminal with the completion loaded; complete(line)
    types line and a tab, and returns the candidates the completion function gave."""

    def __init__(self, completion, path):
        self.dir = tempfile.mkdtemp(prefix="vigil-completion.")
        self.dump = os.path.join(self.dir, "dump")
        self.master, slave = pty.openpty()
        env = dict(os.environ, PS1="$ ", HOME=self.dir, INPUTRC="/dev/null", TERM="dumb",
                   PATH=path + ":" + os.environ.get("PATH", "/usr/bin:/bin"))
        self.proc = subprocess.Popen(["bash", "--norc", "--noprofile", "-i"], stdin=slave,
                                     stdout=slave, stderr=slave, env=env,
                                     start_new_session=True)
        os.close(slave)
        # The completion as installed, wrapped so that each run leaves what it gave in a file.
        self.send(f"source '{completion}' && _dump() {{ _vigilctl \"$@\"; "
                  f"printf '%s\\n' \"${{COMPREPLY[@]}}\" > '{self.dump}.new'; "
                  f"mv '{self.dump}.new' '{self.dump}'; }} && complete -F _dump vigilctl "
                  f"&& echo READY\n")
        self.drain(b"READY")

    def send(self, s):
        os.write(self.master, s.encode())

    def drain(self, until=None, timeout=5):
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if select.select([self.master], [], [], 0.05)[0]:
                try:
                    out += os.read(self.master, 65536)
                except OSError:
                    break
            elif until is None or until in out:
                break
        return out

    def complete(self, line):
        if os.path.exists(self.dump):
            os.unlink(self.dump)
        self.send(line + "\t")
        deadline = time.monotonic() + 10
        while not os.path.exists(self.dump) and time.monotonic() < deadline:
            time.sleep(0.02)
        self.send("\x15")  # ^U: clears the line for the next one
        self.drain()
        try:
            with open(self.dump) as f:
                return [w for w in f.read().split("\n") if w]
        except FileNotFoundError:
            return None

    def close(self):
        self.proc.kill()
        self.proc.wait()
        os.close(self.master)
        shutil.rmtree(self.dir, ignore_errors=True)


def test_install():
    plan = installed()
    dests = {os.path.basename(s): d for s, d in plan.items()}
    for page, section in PAGES.items():
        t.ok(dests.get(page, "").endswith(f"/share/man/{section}/{page}"),
             f"meson installs {page} into share/man/{section}", dests.get(page))
    man_dirs = {os.path.dirname(s) for s in plan if os.path.basename(s) in PAGES}
    pages = {n for d in man_dirs for n in os.listdir(d)}
    t.ok(len(man_dirs) == 1 and pages == set(PAGES),
         "every page of init/man is installed (and this test knows its section)", pages)
    t.ok(dests.get("vigilctl.bash-completion", "").endswith(
        "/share/bash-completion/completions/vigilctl"),
        "meson installs the completion as share/bash-completion/completions/vigilctl",
        dests.get("vigilctl.bash-completion"))


def test_man():
    if not shutil.which("groff"):
        t.n += 1
        print(f"ok {t.n} - the man pages render # SKIP groff is not installed", flush=True)
        return
    for source in sorted(s for s in installed() if os.path.basename(s) in PAGES):
        r = subprocess.run(["groff", "-man", "-ww", "-z", source], capture_output=True,
                           text=True, timeout=60)
        t.ok(r.returncode == 0 and not r.stderr,
             f"{os.path.basename(source)} renders with groff -man -ww and no warning", r.stderr)


def test_completion():
    sources = [s for s in installed() if os.path.basename(s) == "vigilctl.bash-completion"]
    if not sources or not shutil.which("bash"):
        t.ok(False, "the completion is installed and bash is there", sources)
        return
    bash = Bash(sources[0], os.path.join(BUILD, "init"))
    try:
        cases = [
            ("vigilctl ", VERBS, "every verb"),
            ("vigilctl st", {"status", "start", "stop"}, "verbs by prefix"),
            ("vigilctl --", {"--address", "--system", "--json", "--runtime", "--help",
                             "--version"}, "the global options"),
            ("vigilctl logs game -", {"--address", "--system", "--json", "--runtime",
                                      "--help", "--version", "-f", "-n", "--follow",
                                      "--lines"}, "logs adds its own options"),
            ("vigilctl update ", {"stage", "apply", "status", "rollback"},
             "update's sub-verbs"),
            ("vigilctl kill game SIGK", {"SIGKILL"}, "kill's signal"),
            ("vigilctl set-property game RestartS", {"RestartSec=", "RestartSteps="},
             "set-property's keys"),
            ("vigilctl --address u", {"unix:path=/run/vigil/private"}, "the default address"),
            # bash's own word is what follows the last = (or :): only the rest is offered.
            ("vigilctl --address unix:path=/run/vigil/p", {"/run/vigil/private"},
             "an address being typed, across bash's word breaks"),
            ("vigilctl verify --p", {"--policy-dir"}, "verify's option")]
        for line, want, what in cases:
            got = bash.complete(line)
            t.ok(got is not None and set(got) == want, f"completion: {what} ({line!r})", got)

        if os.geteuid() != 0:
            t.n += 1
            print(f"ok {t.n} - completion of service names # SKIP the sandbox needs root",
                  flush=True)
            return
        idle = "[Service]\nExecStart=/bin/sleep 1000\n[Install]\nWantedBy=multi-user.target\n"
        with Sandbox({"game.service": idle, "gate.service": idle, "other.service": idle}) as sb:
            sb.start()
            for n in ("game", "gate", "other"):
                sb.wait_state(n + ".service", "active")
            address = f"unix:path={sb.socket}"
            for line, want, what in [
                    (f"vigilctl --address {address} status ",
                     {"game.service", "gate.service", "other.service"},
                     "the running vigil's services (--address ADDRESS: bash splits it at : "
                     "and =)"),
                    (f"vigilctl --address={address} restart ga",
                     {"game.service", "gate.service"}, "services by prefix, --address=ADDRESS"),
                    (f"vigilctl --address {address} --json kill o", {"other.service"},
                     "kill's service, after an option"),
                    (f"vigilctl --address {address} set-property g",
                     {"game.service", "gate.service"}, "set-property's service")]:
                got = bash.complete(line)
                t.ok(got is not None and set(got) == want, f"completion: {what}", got)
    finally:
        bash.close()


t.run([test_install, test_man, test_completion])
