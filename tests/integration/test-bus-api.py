#!/usr/bin/python3
"""The org.vigil1 API against a real vigil in the sandbox: authorization by uid and groups
(driven through setpriv), the audit log, ReloadUnits (changed, added, removed and broken
files), ResetFailed, SetProperties, the settings' sources in status, the update methods'
authorization and refusals (the update flow itself is test-update.py's), and the system bus
served by a test-owned dbus-daemon that runs as one of vigil's units (never the host's)."""

import json
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from buswire import Peer  # noqa: E402
from sandbox import VIGILCTL, Sandbox, Tap, require_root  # noqa: E402

require_root()
t = Tap()

IDLE = """[Unit]
Description=Idle %s
[Install]
WantedBy=multi-user.target
[Service]
ExecStart=/bin/sleep 1000
"""

CONF = """[Access]
AdminGroup=4243
Grant=4242 restart,start game
Grant=4244 reboot
"""


def ctl_as(sb, groups, *args):
    """vigilctl as uid/gid 65534 with the given supplementary groups."""
    cmd = ["setpriv", "--reuid=65534", "--regid=65534"]
    cmd += [f"--groups={','.join(str(g) for g in groups)}"] if groups else ["--clear-groups"]
    cmd += [VIGILCTL, "--address", f"unix:path={sb.socket}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


def open_socket(sb):
    # Root-only on an appliance; the test lets its unprivileged callers in.
    os.chmod(sb.dir, 0o755)
    os.chmod(sb.runtime, 0o755)
    os.chmod(sb.socket, 0o666)


def test_access():
    units = {"game.service": IDLE % "game", "other.service": IDLE % "other"}
    with Sandbox(units, conf=CONF) as sb:
        sb.start()
        sb.wait_state("game.service", "active")
        sb.wait_state("other.service", "active")
        open_socket(sb)
        r = ctl_as(sb, [], "list")
        t.ok(r.returncode == 0 and "game.service" in r.stdout, "anyone may list", r.stderr)
        r = ctl_as(sb, [], "stop", "game")
        t.ok(r.returncode == 1 and "access denied" in r.stderr,
             "a caller without grants may not stop", r.stderr)
        pid = sb.status("game.service")["main_pid"]
        r = ctl_as(sb, [4242], "restart", "game")
        ok = r.returncode == 0 and sb.wait_for(
            lambda: (sb.status("game.service") or {}).get("main_pid") not in (0, pid), 10)
        t.ok(ok, "the gameops group may restart game", r.stderr)
        r = ctl_as(sb, [4242], "stop", "game")
        t.ok(r.returncode == 1 and "access denied" in r.stderr, "but not stop it", r.stderr)
        r = ctl_as(sb, [4242], "restart", "other")
        t.ok(r.returncode == 1 and "access denied" in r.stderr,
             "and not restart another service", r.stderr)
        r = ctl_as(sb, [4242], "reload")
        t.ok(r.returncode == 1 and "access denied" in r.stderr, "nor reload units", r.stderr)
        r = ctl_as(sb, [7, 4243], "stop", "other")
        t.ok(r.returncode == 0 and sb.wait_state("other.service", "inactive"),
             "the admin group may stop anything", r.stderr)
        r = ctl_as(sb, [4242], "kill", "game", "SIGKILL")
        t.ok(r.returncode == 1 and sb.state_of("game.service") == "active",
             "a denied kill changes nothing", r.stderr)
        with open(os.path.join(sb.state, "log", "audit.log")) as f:
            audit = f.read()
        t.ok("uid=65534 gid=65534" in audit and
             "verb=restart target=game.service result=ok" in audit and
             "verb=stop target=game.service result=denied" in audit and
             "verb=stop target=other.service result=ok" in audit and
             "verb=reload-units target=- result=denied" in audit,
             "the audit log records caller, verb, target and result", audit)
        st = os.stat(os.path.join(sb.state, "log", "audit.log"))
        t.ok(st.st_mode & 0o077 == 0, "the audit log is private", oct(st.st_mode))


def test_reload():
    units = {"keep.service": IDLE % "keep", "change.service": IDLE % "change",
             "gone.service": IDLE % "gone"}
    with Sandbox(units) as sb:
        sb.start()
        for n in units:
            sb.wait_state(n, "active")
        keep = sb.status("keep.service")["main_pid"]
        change = sb.status("change.service")["main_pid"]
        sb.write_unit("change.service", IDLE % "changed" + "RestartSec=7s\n")
        os.unlink(os.path.join(sb.config, "units", "gone.service"))
        sb.write_unit("new.service", IDLE % "new")
        r = sb.ctl("reload")
        t.ok(r.returncode == 0 and "changed change.service (restarting)" in r.stdout and
             "added new.service" in r.stdout and "removed gone.service" in r.stdout and
             "keep.service" not in r.stdout, "vigilctl reload lists the changes",
             r.stdout + r.stderr)
        ok = sb.wait_for(lambda: (sb.status("change.service") or {}).get("main_pid") not in
                         (0, change) and sb.state_of("change.service") == "active", 10)
        t.ok(ok, "the changed service restarted", sb.status("change.service"))
        t.ok(sb.status("keep.service")["main_pid"] == keep, "the unchanged one kept running")
        t.ok(sb.wait_state("new.service", "active"), "the new one started (WantedBy=)")
        t.ok(sb.wait_for(lambda: sb.status("gone.service") is None, 10),
             "the removed one stopped and is gone")
        r = sb.ctl("--json", "status", "change")
        st = json.loads(r.stdout) if r.stdout else {}
        settings = {s["key"]: s for s in st.get("settings", [])}
        rs = settings.get("Service.RestartSec", {})
        t.ok(st.get("description") == "Idle changed" and rs.get("value") == "7s" and
             rs.get("source", "").endswith("change.service:7"),
             "the new unit is in effect, with where RestartSec= came from", rs)

        sb.write_unit("change.service", IDLE % "broken" + "Bogus=1\n")
        pid = sb.status("change.service")["main_pid"]
        r = sb.ctl("reload")
        t.ok(r.returncode == 1 and "change.service:7" in r.stderr and "Bogus" in r.stderr and
             "nothing changed" in r.stderr, "a broken file: reload fails and says where",
             r.stderr)
        r = sb.ctl("--json", "status", "change")
        st = json.loads(r.stdout) if r.stdout else {}
        t.ok(st.get("description") == "Idle changed" and st.get("main_pid") == pid,
             "and the running configuration is untouched", st)


def test_reset_and_properties():
    units = {"fails.service": """[Service]
ExecStart=/bin/sh -c 'exit 3'
""", "game.service": IDLE % "game"}
    with Sandbox(units) as sb:
        sb.start()
        sb.ctl("start", "fails")
        t.ok(sb.wait_state("fails.service", "failed"), "a failing service fails")
        r = sb.ctl("status", "fails")
        t.ok("Last exit: status 3" in r.stdout, "status shows the last exit", r.stdout)
        crashed = sb.wait_for(lambda: "Last crash:" in sb.ctl("status", "fails").stdout, 10)
        t.ok(crashed, "status shows the crash summary", sb.ctl("status", "fails").stdout)
        r = sb.ctl("reset-failed", "fails")
        st = sb.status("fails.service")
        t.ok(r.returncode == 0 and st["active"] == "inactive" and st["result"] == "success",
             "reset-failed makes it inactive with result success", f"{r.stderr} {st}")

        sb.wait_state("game.service", "active")
        r = sb.ctl("set-property", "--runtime", "game", "RestartSec=250ms", "Restart=always")
        st = json.loads(sb.ctl("--json", "status", "game").stdout)
        settings = {s["key"]: s for s in st["settings"]}
        t.ok(r.returncode == 0 and settings["Service.RestartSec"]["value"] == "250ms" and
             settings["Service.Restart"]["value"] == "always" and
             "runtime" in settings["Service.RestartSec"]["source"],
             "set-property --runtime changes the settings and says so", f"{r.stderr} {settings}")
        t.ok(not os.path.exists(os.path.join(sb.state, "overrides", "game.service.conf")),
             "a runtime change is not written down")
        r = sb.ctl("set-property", "game", "StartLimitBurst=9")
        path = os.path.join(sb.state, "overrides", "game.service.conf")
        t.ok(r.returncode == 0 and os.path.exists(path) and
             "StartLimitBurst=9" in open(path).read(), "a persistent change is kept in STATE",
             r.stderr)
        r = sb.ctl("set-property", "game", "ExecStart=/bin/evil")
        t.ok(r.returncode == 1 and "cannot be changed" in r.stderr,
             "other settings are refused", r.stderr)
        r = sb.ctl("set-property", "game", "RestartSec=soon")
        t.ok(r.returncode == 1 and "invalid RestartSec=" in r.stderr, "bad values are refused",
             r.stderr)
        r = sb.ctl("set-property", "game", "RestartSteps=3")
        t.ok(r.returncode == 1 and "RestartMaxDelaySec" in r.stderr,
             "a combination the loader refuses is refused too", r.stderr)
        r = sb.ctl("set-property", "--runtime", "game", "CPUWeight=500", "MemoryMax=64M")
        st = json.loads(sb.ctl("--json", "status", "game").stdout)
        t.ok(r.returncode == 0, "resource settings change live too", r.stderr)
        r = sb.ctl("set-property", "game", "MemoryMax=lots")
        t.ok(r.returncode == 1 and "MemoryMax=" in r.stderr,
             "a bad resource value is refused by the loader's own rules", r.stderr)
        r = sb.ctl("set-property", "game", "CPUPriority=high")
        t.ok(r.returncode == 1 and "stopped" in r.stderr,
             "a tier change of a running service is refused", r.stderr)
        pid = sb.status("game.service")["main_pid"]
        sb.ctl("kill", "game", "SIGTERM")
        ok = sb.wait_for(lambda: (sb.status("game.service") or {}).get("main_pid") not in
                         (0, pid) and sb.state_of("game.service") == "active", 5)
        t.ok(ok, "the live Restart=always takes effect", sb.service_log("game.service"))
        sb.stop()
        sb.start()
        st = json.loads(sb.ctl("--json", "status", "game").stdout)
        settings = {s["key"]: s for s in st["settings"]}
        t.ok(settings["Unit.StartLimitBurst"]["value"] == "9" and
             settings["Service.RestartSec"]["value"] == "100ms",
             "after a restart of vigil the persistent change stays, the runtime one is gone",
             settings)


def vigil_fds(sb):
    return len(os.listdir(f"/proc/{sb.pid()}/fd"))


UPDATE_METHODS = {"StageUpdate": (["s", "h", "h", "h"], []),
                  "ApplyUpdates": (["b"], ["a(sssss)"]),
                  "RollbackImage": (["s"], []),
                  "GetUpdateStatus": ([], ["a(ssssbusa(sss))", "as"])}


def update_introspection(xml):
    """Whether the XML lists the update methods with their argument types and ImageUpdate;
    (ok, what was found)."""
    import xml.etree.ElementTree as ET
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as e:
        return False, f"XML does not parse: {e}"
    m = [i for i in root.findall("interface") if i.get("name") == "org.vigil1.Manager"]
    if not m:
        return False, "no org.vigil1.Manager"
    found = {}
    for x in m[0].findall("method"):
        args = x.findall("arg")
        found[x.get("name")] = ([a.get("type") for a in args if a.get("direction") == "in"],
                                [a.get("type") for a in args if a.get("direction") == "out"])
    signals = {x.get("name"): [a.get("type") for a in x.findall("arg")]
               for x in m[0].findall("signal")}
    ok = all(found.get(k) == v for k, v in UPDATE_METHODS.items()) and \
        signals.get("ImageUpdate") == ["s", "s", "s", "s"]
    return ok, f"methods {found} signals {signals}"


def test_update():
    """Who may stage, apply and roll back; what the methods refuse; vigilctl's usage errors.
    No unit uses an image here, so there is nothing to update."""
    units = {"game.service": IDLE % "game"}
    with Sandbox(units, conf=CONF) as sb:
        sb.start()
        sb.wait_state("game.service", "active")
        open_socket(sb)
        bundle = os.path.join(sb.work, "game-1.0")
        for suffix in (".squashfs", ".manifest", ".manifest.minisig"):
            with open(bundle + suffix, "w") as f:
                f.write("not a real bundle\n")
        incoming = os.path.join(sb.dir, "incoming")

        def staged_files():
            return sorted(n for _, _, ns in os.walk(incoming) for n in ns) \
                if os.path.isdir(incoming) else []

        r = ctl_as(sb, [], "update", "stage", bundle + ".squashfs")
        t.ok(r.returncode == 1 and "access denied: uid 65534 may not update" in r.stderr and
             not staged_files(), "a caller without grants may not stage an update", r.stderr)
        r = ctl_as(sb, [4242], "update", "apply")
        t.ok(r.returncode == 1 and "access denied" in r.stderr,
             "a group granted service verbs may not apply updates", r.stderr)
        r = ctl_as(sb, [4244], "update", "rollback", "game")
        t.ok(r.returncode == 1 and "access denied" in r.stderr,
             "a group granted reboot may not roll back", r.stderr)
        r = ctl_as(sb, [], "update", "rollback", "nosuch")
        t.ok(r.returncode == 1 and "access denied" in r.stderr,
             "AccessDenied comes before NoSuchImage", r.stderr)
        r = ctl_as(sb, [], "--json", "update", "status")
        try:
            st = json.loads(r.stdout)
        except ValueError:
            st = None
        t.ok(r.returncode == 0 and st == {"images": [], "staged": []},
             "anyone may read the update status: no images, nothing staged", r.stdout + r.stderr)
        with open(os.path.join(sb.state, "log", "audit.log")) as f:
            audit = f.read()
        t.ok(all(f"via=private verb=update target={x} result=denied"
                 in audit for x in ("game-1.0", "-", "game", "nosuch")),
             "each denied update call is in the audit log with its target", audit)

        r = sb.ctl("--json", "update", "status")
        try:
            st = json.loads(r.stdout)
        except ValueError:
            st = None
        t.ok(r.returncode == 0 and st == {"images": [], "staged": []},
             "vigilctl --json update status parses", r.stdout + r.stderr)
        r = sb.ctl("update", "status")
        t.ok(r.returncode == 0 and "No bundle staged." in r.stdout,
             "vigilctl update status says when nothing is staged", r.stdout + r.stderr)
        r = sb.ctl("update", "rollback", "nosuch")
        t.ok(r.returncode == 1 and "nosuch" in r.stderr, "vigilctl update rollback of an unknown "
             "image exits 1 and says so", r.stderr)
        usage = [["update"], ["update", "bogus"], ["update", "stage"],
                 ["update", "stage", "a", "b"], ["update", "apply", "x"],
                 ["update", "status", "x"], ["update", "rollback"],
                 ["update", "rollback", "a", "b"], ["update", "status", "--force"],
                 ["update", "apply", "--bogus"]]
        bad = [(a, r.returncode) for a in usage for r in [sb.ctl(*a)] if r.returncode != 2]
        t.ok(not bad, "vigilctl update usage errors exit 2", bad)
        r = sb.ctl("update", "stage", os.path.join(sb.work, "missing-1.0"))
        t.ok(r.returncode == 1 and "missing-1.0.squashfs" in r.stderr,
             "vigilctl update stage names the missing file", r.stderr)

        peer = Peer(sb.socket)
        try:
            files = [os.open(bundle + s, os.O_RDONLY | os.O_CLOEXEC)
                     for s in (".squashfs", ".manifest", ".manifest.minisig")]
            pipe_r, pipe_w = os.pipe()
            sock_a, sock_b = socket.socketpair()
            directory = os.open(sb.work, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            before = vigil_fds(sb)
            results = {}
            for what, stem, fds in [
                    ("the stem ../x-1", "../x-1", files),
                    ("an empty stem", "", files),
                    ("a 64 KiB stem", "x" * 65536, files),
                    ("a pipe", "game-1.0", [pipe_r] + files[1:]),
                    ("a socket", "game-1.0", [files[0], sock_a.fileno(), files[2]]),
                    ("a directory", "game-1.0", files[:2] + [directory])]:
                results[what] = peer.call("StageUpdate", "shhh", stem, *fds)
            for what, (err, args) in results.items():
                t.ok(err == "org.vigil1.Error.InvalidArgument" and args and len(args[0]) < 200,
                     f"StageUpdate with {what}: InvalidArgument, a short message",
                     f"{err} {str(args)[:300]}")
            t.ok("is a pipe" in str(results["a pipe"][1]) and
                 "is a socket" in str(results["a socket"][1]) and
                 "is a directory" in str(results["a directory"][1]),
                 "the messages say what was wrong with the fd", results)
            err, args = peer.call("RollbackImage", "s", "nosuch")
            t.ok(err == "org.vigil1.Error.NoSuchImage" and "nosuch" in str(args),
                 "RollbackImage of an unknown image: NoSuchImage", f"{err} {args}")
            err, args = peer.call("RollbackImage", "s", "../x")
            t.ok(err == "org.vigil1.Error.InvalidArgument", "RollbackImage of a bad name: "
                 "InvalidArgument", f"{err} {args}")
            err, args = peer.call("RollbackImage", "s", "y" * 65536)
            t.ok(err == "org.vigil1.Error.InvalidArgument" and len(str(args)) < 300,
                 "RollbackImage of a 64 KiB name: InvalidArgument", f"{err} {str(args)[:300]}")
            err, _ = peer.call("ApplyUpdates", "b", False)
            t.ok(err is None, "ApplyUpdates with nothing staged succeeds", err)
            err, _ = peer.call("GetUpdateStatus", "")
            t.ok(err is None, "GetUpdateStatus over the raw peer", err)
            err, args = peer.call("Introspect", "", interface="org.freedesktop.DBus.Introspectable")
            ok, found = update_introspection(args[0] if args else "")
            t.ok(err is None and ok, "introspection lists the update methods, their argument "
                 "types and the ImageUpdate signal", f"{err} {found}")
            t.ok(serves(sb) and not staged_files(), "vigil still serves and staged nothing",
                 staged_files())
            # vigilctl's connection of serves() may still be closing: a leak would not go.
            sb.wait_for(lambda: vigil_fds(sb) <= before, 5)
            after = vigil_fds(sb)
            t.ok(after <= before, f"no fd leaked in vigil ({before} before, {after} after)")
            for fd in files + [pipe_r, pipe_w, directory]:
                os.close(fd)
            sock_a.close()
            sock_b.close()
        finally:
            peer.close()


def serves(sb):
    return sb.ctl("list").returncode == 0 and sb.proc.poll() is None


DBUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=@WORK@/bus.sock</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus"/>
  </policy>
  <include>@POLICY@</include>
  <limit name="max_message_size">1048576</limit>
</busconfig>
"""


def busctl(sb, *args, uid=None, groups=None):
    cmd = ["setpriv", "--reuid=65534", "--regid=65534"] if uid else []
    if uid:
        cmd += [f"--groups={','.join(str(g) for g in groups)}"] if groups else ["--clear-groups"]
    cmd += ["busctl", f"--address={bus_address(sb)}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


# The shipped policy of the gameserver appliance: only root may own org.vigil1.
POLICY = os.path.abspath(os.path.join(os.path.dirname(__file__),
                                      "../../image/appliances/gameserver/rootfs/etc/dbus-1/"
                                      "system.d/org.vigil1.conf"))
# The test-owned dbus-daemon, one of vigil's units; its socket is WORK/bus.sock.
DBUS_UNIT = """[Service]
ExecStart=/bin/sh -c 'umask 0; exec dbus-daemon --nofork --nopidfile --config-file=@WORK@/bus.conf'
Restart=always
RestartSec=200ms
[Install]
WantedBy=multi-user.target
"""


def bus_address(sb):
    return f"unix:path={sb.work}/bus.sock"


def start_with_bus(sb, conf=CONF):
    """Starts sb (whose units include DBUS_UNIT as dbus.service) with vigil.conf naming the
    test bus as the system bus, plus conf; whether vigil took org.vigil1 there."""
    if not os.path.exists(POLICY):
        t.ok(False, "the shipped org.vigil1 policy exists", POLICY)
        return False
    with open(os.path.join(sb.config, "vigil.conf"), "w") as f:
        f.write(f"[Manager]\nSystemBusAddress={bus_address(sb)}\n" + conf)
    with open(os.path.join(sb.work, "bus.conf"), "w") as f:
        f.write(DBUS_CONF.replace("@WORK@", sb.work).replace("@POLICY@", POLICY))
    os.chmod(sb.work, 0o755)
    os.chmod(sb.dir, 0o755)
    sb.start()
    return sb.wait_for(lambda: "org.vigil1" in busctl(sb, "list", "--acquired").stdout, 15)


def test_system_bus():
    units = {"dbus.service": DBUS_UNIT, "game.service": IDLE % "game"}
    with Sandbox(units) as sb:
        named = start_with_bus(sb)
        sb.wait_state("game.service", "active")
        t.ok(named, "vigil takes org.vigil1 when the bus appears", sb.vigil_log()[-2000:])
        r = busctl(sb, "call", "org.vigil1", "/org/vigil1", "org.vigil1.Manager",
                   "ListServices")
        t.ok(r.returncode == 0 and "game.service" in r.stdout, "busctl ListServices",
             r.stdout + r.stderr)
        r = subprocess.run([VIGILCTL, "--system", "--address", bus_address(sb),
                            "--json", "list"], capture_output=True, text=True, timeout=30)
        t.ok(r.returncode == 0 and "game.service" in r.stdout,
             "vigilctl --system talks to vigil through the bus", r.stdout + r.stderr)
        r = busctl(sb, "introspect", "org.vigil1", "/org/vigil1")
        t.ok(r.returncode == 0 and "ReloadUnits" in r.stdout and "ServiceCrashed" in r.stdout,
             "the manager is introspectable", r.stderr)
        r = busctl(sb, "call", "org.vigil1", "/org/vigil1", "org.vigil1.Manager",
                   "StopService", "s", "game.service", uid=65534)
        t.ok(r.returncode != 0 and "may not stop game.service" in r.stderr and
             sb.state_of("game.service") == "active",
             "an unprivileged caller on the system bus is denied",
             r.stderr + sb.vigil_log()[-1500:])
        pid = sb.status("game.service")["main_pid"]
        r = busctl(sb, "call", "org.vigil1", "/org/vigil1", "org.vigil1.Manager",
                   "RestartService", "s", "game.service", uid=65534, groups=[4242])
        # Not every dbus-daemon reports supplementary groups (UnixGroupIDs; Debian's 1.14.10
        # does); without them, grants by group give nothing on the system bus (denied).
        creds = busctl(sb, "call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
                       "org.freedesktop.DBus", "GetConnectionCredentials", "s", "org.vigil1")
        if "UnixGroupIDs" in creds.stdout:
            ok = r.returncode == 0 and sb.wait_for(
                lambda: (sb.status("game.service") or {}).get("main_pid") not in (0, pid), 10)
            t.ok(ok, "a caller in a granted group may restart through the system bus",
                 r.stderr + sb.vigil_log()[-600:])
        else:
            t.ok(r.returncode != 0 and "may not restart" in r.stderr and
                 sb.status("game.service")["main_pid"] == pid,
                 "without UnixGroupIDs from the bus daemon, group grants give nothing there",
                 r.stderr)
        r = busctl(sb, "call", "org.vigil1", "/org/vigil1", "org.vigil1.Manager",
                   "RestartService", "s", "x" * 65536)
        t.ok(r.returncode != 0 and "invalid service name" in r.stderr,
             "a 64 KiB name is a clear error", r.stderr[:300])
        r = busctl(sb, "call", "org.vigil1", "/org/vigil1", "org.vigil1.Manager",
                   "StartService", "u", "5")
        t.ok(r.returncode != 0 and "expecting 's'" in r.stderr,
             "a wrong signature is refused", r.stderr)
        r = busctl(sb, "get-property", "org.vigil1", "/org/vigil1/service/game_2eservice",
                   "org.vigil1.Service", "Nope")
        t.ok(r.returncode != 0, "an unknown property is an error", r.stderr)
        args = ["call", "org.vigil1", "/org/vigil1", "org.vigil1.Manager", "SetProperties",
                "sba(sv)", "game.service", "true", "100"] + ["Restart", "s", "always"] * 100
        r = busctl(sb, *args)
        t.ok(r.returncode != 0 and "more than 32 properties" in r.stderr,
             "a huge property array is refused", r.stderr)
        procs = [subprocess.Popen(["busctl", f"--address={bus_address(sb)}",
                                   "call", "org.vigil1", "/org/vigil1", "org.vigil1.Manager",
                                   "GetLogs", "su", "game.service", "100000"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for _ in range(20)]
        for p in procs[:10]:
            p.kill()
        for p in procs:
            p.wait()
        r = busctl(sb, "call", "org.vigil1", "/org/vigil1", "org.vigil1.Manager",
                   "ListServices")
        t.ok(r.returncode == 0 and sb.proc.poll() is None,
             "a flood with callers leaving mid-call: vigil still serves", r.stderr)

        game = sb.status("game.service")["main_pid"]
        sb.ctl("kill", "dbus", "SIGTERM")
        time.sleep(0.5)
        again = sb.wait_for(lambda: "org.vigil1" in busctl(sb, "list", "--acquired").stdout, 15)
        t.ok(again, "after the bus restarts vigil takes the name again", sb.vigil_log()[-2000:])
        r = busctl(sb, "call", "org.vigil1", "/org/vigil1", "org.vigil1.Manager",
                   "ListServices")
        t.ok(r.returncode == 0 and sb.status("game.service")["main_pid"] == game,
             "with no state lost", r.stdout)



# The python3-dbus client of test_python_dbus, run in a child (as root, or as nobody through
# setpriv) by an interpreter that has the module: Debian's python3-dbus is built for
# /usr/bin/python3, which need not be the python3 running this test. It makes the calls named
# in argv[2:] on the bus at argv[1] and prints one JSON object: what each call returned, or
# {"error": D-Bus error name, "message": ...}.
PY_CLIENT = r"""
import json, sys
import dbus
bus = dbus.bus.BusConnection(sys.argv[1])
manager = bus.get_object("org.vigil1", "/org/vigil1")
mgr = dbus.Interface(manager, "org.vigil1.Manager")

def plain(v):
    if isinstance(v, dbus.Array):
        return {"signature": str(v.signature), "items": [plain(x) for x in v]}
    if isinstance(v, (dbus.Struct, tuple, list)):
        return [plain(x) for x in v]
    if isinstance(v, dbus.Dictionary):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, dbus.ObjectPath):
        return {"object_path": str(v)}
    if isinstance(v, (dbus.Boolean, bool)):
        return bool(v)
    if isinstance(v, (int, dbus.UInt32, dbus.Int32, dbus.UInt64)):
        return {"type": type(v).__name__, "value": int(v)}
    return str(v)

def run(what):
    if what == "list":
        return plain(mgr.ListServices())
    if what.startswith("get-service="):
        return plain(mgr.GetService(what.split("=", 1)[1]))
    if what == "getall":
        path = mgr.GetService("game.service")
        props = dbus.Interface(bus.get_object("org.vigil1", path),
                               "org.freedesktop.DBus.Properties")
        return {"all": plain(props.GetAll("org.vigil1.Service")),
                "state": str(props.Get("org.vigil1.Service", "State"))}
    if what == "introspect":
        return str(manager.Introspect(dbus_interface="org.freedesktop.DBus.Introspectable"))
    if what == "stop":
        return plain(mgr.StopService("game.service"))
    if what == "update-status":
        images, staged = mgr.GetUpdateStatus()
        return {"images": plain(images), "staged": plain(staged)}
    if what == "apply":
        return plain(mgr.ApplyUpdates(False))
    if what.startswith("rollback="):
        return plain(mgr.RollbackImage(what.split("=", 1)[1]))
    if what in ("stage-file", "stage-pipe"):
        import os
        fd = os.pipe()[0] if what == "stage-pipe" else os.open(sys.executable, os.O_RDONLY)
        u = dbus.types.UnixFd(fd)
        return plain(mgr.StageUpdate("game-1.0", u, u, u))
    raise SystemExit("unknown call " + what)

out = {}
for what in sys.argv[2:]:
    try:
        out[what] = {"ok": run(what)}
    except dbus.exceptions.DBusException as e:
        out[what] = {"error": e.get_dbus_name(), "message": e.get_dbus_message()}
print(json.dumps(out))
"""


def dbus_python():
    """An interpreter with python3-dbus: this one, else Debian's own; None without one."""
    for py in dict.fromkeys([sys.executable, "/usr/bin/python3"]):
        if os.access(py, os.X_OK) and subprocess.run(
                [py, "-c", "import dbus"], capture_output=True).returncode == 0:
            return py
    return None


def test_python_dbus():
    """The API as a python3-dbus client sees it through the test-owned dbus-daemon."""
    import xml.etree.ElementTree as ET
    py = dbus_python()
    if py is None:
        t.n += 1
        print(f"ok {t.n} - python3-dbus client # SKIP python3-dbus is not installed", flush=True)
        return
    units = {"dbus.service": DBUS_UNIT, "game.service": IDLE % "game",
             "other.service": IDLE % "other"}
    with Sandbox(units) as sb:
        address = bus_address(sb)
        named = start_with_bus(sb)
        sb.wait_state("game.service", "active")
        sb.wait_state("other.service", "active")
        if not t.ok(named, "python3-dbus: vigil owns org.vigil1 on the test bus",
                    sb.vigil_log()[-2000:]):
            return

        def client(*calls, unprivileged=False):
            cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] \
                if unprivileged else []
            r = subprocess.run(cmd + [py, "-c", PY_CLIENT, address, *calls],
                               capture_output=True, text=True, timeout=30)
            try:
                return json.loads(r.stdout.strip().splitlines()[-1]), r.stderr
            except (ValueError, IndexError):
                return {}, r.stdout + r.stderr

        res, err = client("list", "get-service=game.service", "get-service=nope.service",
                          "getall", "introspect")
        services = res.get("list", {}).get("ok", {})
        rows = {s[0]: s for s in services.get("items", [])}
        game = rows.get("game.service", [])
        t.ok(services.get("signature") == "(sssssuu)" and game[1:3] == ["Idle game", "active"]
             and "other.service" in rows,
             "python3-dbus: ListServices returns a(sssssuu) with both services", f"{res} {err}")

        t.ok(res.get("get-service=game.service", {}).get("ok") ==
             {"object_path": "/org/vigil1/service/game_2eservice"},
             "python3-dbus: GetService returns the service's object path", res)
        t.ok(res.get("get-service=nope.service", {}).get("error") ==
             "org.vigil1.Error.NoSuchService",
             "python3-dbus: GetService of an unknown name is NoSuchService", res)

        got = res.get("getall", {}).get("ok", {})
        allp = got.get("all", {})
        pid = sb.status("game.service")["main_pid"]
        wanted = {"Name", "Description", "State", "SubState", "Result", "MainPID", "Restarts",
                  "ActiveSince", "LastExitCode", "LastExitSignal", "UnitPath", "Image",
                  "ImageVersion", "Warnings", "Settings"}
        settings = allp.get("Settings", {})
        t.ok(wanted <= set(allp) and allp["Name"] == "game.service" and
             allp["State"] == "active" and
             allp["MainPID"] == {"type": "UInt32", "value": pid} and
             allp["ActiveSince"].get("value", 0) > 0 and
             settings.get("signature") == "(sss)" and
             any(s[0] == "Service.ExecStart" for s in settings.get("items", [])),
             "python3-dbus: Properties.GetAll of a service object", got)
        t.ok(got.get("state") == "active", "python3-dbus: Properties.Get of one property", got)

        xml = res.get("introspect", {}).get("ok", "")
        try:
            root = ET.fromstring(xml)
        except ET.ParseError as e:
            t.ok(False, "python3-dbus: the introspection XML of /org/vigil1 parses", e)
            root = None
        if root is not None:
            ifaces = {i.get("name"): i for i in root.findall("interface")}
            m = ifaces.get("org.vigil1.Manager")
            methods = {x.get("name"): x for x in m.findall("method")} if m is not None else {}
            signals = {x.get("name") for x in m.findall("signal")} if m is not None else set()
            want = {"ListServices", "GetService", "StartService", "StopService",
                    "RestartService", "ReloadService", "KillService", "ResetFailed",
                    "SetProperties", "ReloadUnits", "GetLogs", "FollowLogs", "GetCrashRecords",
                    "Reboot", "PowerOff"}
            ls = methods.get("ListServices")
            out = [a.get("type") for a in ls.findall("arg") if a.get("direction") == "out"] \
                if ls is not None else []
            t.ok(root.tag == "node" and want <= set(methods) and out == ["a(sssssuu)"] and
                 {"ServiceStateChanged", "ServiceCrashed"} <= signals and
                 "org.freedesktop.DBus.Properties" in ifaces,
                 "python3-dbus: the introspection XML of /org/vigil1 parses and lists "
                 "org.vigil1.Manager with its methods and signals",
                 f"interfaces {sorted(ifaces)} methods {sorted(methods)} signals {signals}")

        res, err = client("stop", unprivileged=True)
        stop = res.get("stop", {})
        t.ok(stop.get("error") == "org.vigil1.Error.AccessDenied" and
             "game.service" in stop.get("message", "") and
             sb.state_of("game.service") == "active",
             "python3-dbus: an unprivileged caller gets org.vigil1.Error.AccessDenied "
             "for StopService", f"{res} {err}")

        if xml:
            ok, found = update_introspection(xml)
            t.ok(ok, "python3-dbus: the introspection XML lists the update methods and "
                 "ImageUpdate", found)
        res, err = client("update-status", "apply", "rollback=game", "stage-file",
                          unprivileged=True)
        status = res.get("update-status", {}).get("ok", {})
        t.ok(status.get("images", {}).get("signature") == "(ssssbusa(sss))" and
             status.get("images", {}).get("items") == [] and
             status.get("staged", {}).get("items") == [],
             "python3-dbus: anyone may GetUpdateStatus: no images, nothing staged",
             f"{res} {err}")
        denied = {k: res.get(k, {}).get("error") for k in ("apply", "rollback=game", "stage-file")}
        t.ok(all(v == "org.vigil1.Error.AccessDenied" for v in denied.values()),
             "python3-dbus: an unprivileged caller on the system bus may not apply, roll back "
             "or stage (an fd passed through the bus daemon)", f"{res} {err}")
        res, err = client("rollback=nosuch", "stage-pipe")
        t.ok(res.get("rollback=nosuch", {}).get("error") == "org.vigil1.Error.NoSuchImage",
             "python3-dbus: RollbackImage of an unknown image is NoSuchImage", f"{res} {err}")
        stage = res.get("stage-pipe", {})
        t.ok(stage.get("error") == "org.vigil1.Error.InvalidArgument" and
             "pipe" in stage.get("message", ""),
             "python3-dbus: StageUpdate of a pipe through the bus daemon is InvalidArgument",
             f"{res} {err}")

def test_signals():
    """ServiceStateChanged and ServiceCrashed as a client receives them: on the private socket
    (every connection gets every signal) and through the test bus (after AddMatch)."""
    units = {"dbus.service": DBUS_UNIT,
             "game.service": "[Service]\nExecStart=/bin/sleep 1000\n",
             "crash.service": "[Service]\nExecStart=/bin/sleep 1000\nRestart=on-failure\n"
                              "RestartSec=100ms\n",
             "exits.service": "[Service]\nExecStart=/bin/sh -c 'exit 3'\n"}
    with Sandbox(units) as sb:
        if not t.ok(start_with_bus(sb), "signals: vigil owns org.vigil1 on the test bus",
                    sb.vigil_log()[-2000:]):
            return
        private = Peer(sb.socket)
        onbus = Peer(f"{sb.work}/bus.sock")
        try:
            onbus.subscribe("type='signal',sender='org.vigil1',interface='org.vigil1.Manager'")
            peers = (("private socket", private), ("bus", onbus))

            def changes(peer, name):
                return [a[1:] for a in peer.members("ServiceStateChanged") if a[0] == name]

            def wait_change(peer, name, *want):
                return peer.wait_signal("ServiceStateChanged",
                                        lambda a: a == (name, *want)) is not None

            sb.ctl("start", "game", check=True)
            for where, p in peers:
                ok = wait_change(p, "game.service", "active", "running", "success")
                t.ok(ok and changes(p, "game.service")[0] == ("activating", "start", "success"),
                     f"ServiceStateChanged on the {where} for a start: activating/start, then "
                     "active/running, result success", changes(p, "game.service"))
            sb.ctl("stop", "game", check=True)
            for where, p in peers:
                ok = wait_change(p, "game.service", "inactive", "dead", "success")
                seen = changes(p, "game.service")
                t.ok(ok and ("deactivating", "stop-sigterm", "success") in seen,
                     f"ServiceStateChanged on the {where} for a stop: deactivating/stop-sigterm, "
                     "then inactive/dead", seen)

            sb.ctl("start", "crash", check=True)
            sb.wait_state("crash.service", "active")
            sb.ctl("kill", "crash", "SIGKILL", check=True)
            for where, p in peers:
                got = p.wait_signal("ServiceCrashed", lambda a: a[0] == "crash.service")
                t.ok(got == ("crash.service", "signal", -1, 9, 0),
                     f"ServiceCrashed on the {where} for a SIGKILL: result signal, exit code -1, "
                     "signal 9, 0 restarts so far", got)
            for where, p in peers:
                t.ok(wait_change(p, "crash.service", "activating", "auto-restart", "signal"),
                     f"ServiceStateChanged on the {where}: the crashed service waits to restart",
                     changes(p, "crash.service"))
            sb.wait_for(lambda: (sb.status("crash.service") or {}).get("restarts") == 1 and
                        sb.state_of("crash.service") == "active", 10)
            sb.ctl("kill", "crash", "SIGKILL", check=True)
            got = private.wait_signal("ServiceCrashed", lambda a: a[0] == "crash.service" and
                                      a[4] == 1)
            t.ok(got == ("crash.service", "signal", -1, 9, 1),
                 "a second crash: ServiceCrashed counts the restart",
                 private.members("ServiceCrashed"))

            sb.ctl("start", "exits", check=True)
            for where, p in peers:
                got = p.wait_signal("ServiceCrashed", lambda a: a[0] == "exits.service")
                failed = wait_change(p, "exits.service", "failed", "failed", "exit-code")
                t.ok(got == ("exits.service", "exit-code", 3, 0, 0) and failed,
                     f"ServiceCrashed on the {where} for exit 3: result exit-code, exit code 3, "
                     "no signal; then ServiceStateChanged failed/failed/exit-code",
                     f"{got} {changes(p, 'exits.service')}")
            t.ok(not [a for a in private.members("ServiceCrashed") if a[0] == "game.service"],
                 "a clean stop is no crash")
            t.ok(private.error is None and onbus.error is None, "every signal parsed",
                 f"{private.error} {onbus.error}")
        finally:
            private.close()
            onbus.close()


def ordered_unit(name, after=None):
    """A service that notes its start and, on SIGTERM, its stop in WORK/started, WORK/stopped."""
    return f"""[Unit]
{"After=" + after if after else ""}
[Service]
ExecStart=/bin/sh -c 'trap "echo {name} >> @WORK@/stopped; exit 0" TERM; \\
echo {name} >> @WORK@/started; while :; do sleep 0.05; done'
[Install]
WantedBy=multi-user.target
"""


def words(path):
    try:
        with open(path) as f:
            return f.read().split()
    except FileNotFoundError:
        return []


def test_shutdown():
    """Reboot and PowerOff end to end: in --sandbox vigil stops every service in order and
    exits 0 (no reboot), whether asked through the test bus or by vigilctl; an unprivileged
    caller is denied and nothing stops."""
    units = {"dbus.service": DBUS_UNIT, "a.service": ordered_unit("a"),
             "b.service": ordered_unit("b", "a.service")}
    cases = [("busctl", "Reboot", "reboot", "Reboot"), ("busctl", "PowerOff", "poweroff",
                                                        "Power-off"),
             ("vigilctl", "reboot", "reboot", "Reboot"), ("vigilctl", "poweroff", "poweroff",
                                                          "Power-off")]
    for tool, what, verb, logged in cases:
        with Sandbox(units) as sb:
            if not t.ok(start_with_bus(sb), f"{tool} {what}: vigil owns org.vigil1",
                        sb.vigil_log()[-2000:]):
                continue
            sb.wait_for(lambda: sorted(words(sb.work + "/started")) == ["a", "b"], 10)
            open_socket(sb)

            def call(uid=None, groups=None):
                if tool == "busctl":
                    return busctl(sb, "call", "org.vigil1", "/org/vigil1", "org.vigil1.Manager",
                                  what, uid=uid, groups=groups)
                if uid is None:
                    return sb.ctl(what)
                return ctl_as(sb, groups or [], what)

            r = call(uid=65534)
            denied = r.returncode == 1 if tool == "vigilctl" else r.returncode != 0
            time.sleep(0.3)  # a wrongly accepted request would be stopping things by now
            t.ok(denied and f"may not {verb}" in r.stderr and sb.proc.poll() is None and
                 not words(sb.work + "/stopped") and sb.state_of("a.service") == "active",
                 f"{tool} {what} as an unprivileged caller: access denied, nothing stops",
                 r.stderr)
            r = call(uid=65534, groups=[4242])
            t.ok(r.returncode != 0 and f"may not {verb}" in r.stderr and sb.proc.poll() is None,
                 f"{tool} {what} from a group granted only service verbs: denied", r.stderr)
            r = call()
            rc = wait_exit(sb)
            log = sb.vigil_log()
            t.ok(r.returncode == 0 and rc == 0,
                 f"{tool} {what} as root: the call succeeds and vigil --sandbox exits 0",
                 f"call {r.returncode} {r.stderr} vigil {rc}\n{log[-1500:]}")
            t.ok(words(sb.work + "/stopped") == ["b", "a"] and
                 f"{logged} requested over D-Bus by uid 0." in log and
                 "Shutting down for exit: stopping all services." in log,
                 f"{tool} {what}: every service stopped, in reverse order, and the log says who "
                 "asked", f"stopped {words(sb.work + '/stopped')}\n{log[-1500:]}")
            with open(os.path.join(sb.state, "log", "audit.log")) as f:
                audit = f.read()
            # The caller is outside the sandbox's PID namespace: no pid; dbus-daemon gives
            # no gid.
            via, gid, gid0 = ("system-bus", "-", "-") if tool == "busctl" else \
                ("private", "65534", "0")
            t.ok(f"uid=65534 gid={gid} pid=- via={via} verb={verb} target=- result=denied"
                 in audit and
                 f"uid=0 gid={gid0} pid=- via={via} verb={verb} target=- result=ok" in audit,
                 f"{tool} {what}: the audit log has the denied and the accepted request, "
                 "unknown ids as -", audit)


def test_reload_service():
    """ReloadService runs ExecReload= (every command, in order, with $MAINPID) while the main
    process keeps running; without ExecReload=, or when not running, a clear error."""
    units = {
        "reloadable.service": """[Service]
ExecStart=/bin/sh -c 'trap "echo hup >> @WORK@/hups" HUP; while :; do sleep 0.05; done'
ExecReload=/bin/kill -HUP $MAINPID
ExecReload=/bin/sh -c 'echo second >> @WORK@/reloads'
[Install]
WantedBy=multi-user.target
""",
        "badreload.service": IDLE % "badreload" + "ExecReload=/bin/false\n",
        "stopped.service": "[Service]\nExecStart=/bin/sleep 1000\nExecReload=/bin/true\n",
        "plain.service": IDLE % "plain"}
    with Sandbox(units) as sb:
        sb.start()
        for n in ("reloadable", "badreload", "plain"):
            sb.wait_state(n + ".service", "active")
        pid = sb.status("reloadable.service")["main_pid"]
        peer = Peer(sb.socket)
        try:
            err, _ = peer.call("ReloadService", "s", "reloadable.service")
            ran = sb.wait_for(lambda: words(sb.work + "/hups") == ["hup"] and
                              words(sb.work + "/reloads") == ["second"], 10)
            t.ok(err is None and ran, "ReloadService runs each ExecReload= in order ($MAINPID "
                 "reaches the main process)", f"{err} {words(sb.work + '/hups')}")
            back = peer.wait_signal("ServiceStateChanged", lambda a: a == (
                "reloadable.service", "active", "running", "success"))
            seen = [a[1:3] for a in peer.members("ServiceStateChanged")
                    if a[0] == "reloadable.service"]
            t.ok(back is not None and seen[0] == ("reloading", "reload") and
                 sb.status("reloadable.service")["main_pid"] == pid and
                 "Reloaded." in sb.service_log("reloadable.service"),
                 "the service is reloading, then active again with the same main process",
                 f"{seen} {sb.service_log('reloadable.service')[-500:]}")
            for what, name, error, message in [
                    ("a service without ExecReload=", "plain", "NotSupported",
                     "cannot reload plain.service: it has no ExecReload="),
                    ("a stopped service", "stopped", "NotRunning",
                     "cannot reload stopped.service: it is not running"),
                    ("an unknown name", "nosuch", "NoSuchService",
                     "no service named nosuch.service")]:
                err, args = peer.call("ReloadService", "s", name + ".service")
                t.ok(err == "org.vigil1.Error." + error and args == (message,),
                     f"ReloadService of {what}: {error}, \"{message}\"", f"{err} {args}")
            t.ok(sb.state_of("plain.service") == "active", "the service without ExecReload= "
                 "runs on")
            bad = sb.status("badreload.service")["main_pid"]
            err, _ = peer.call("ReloadService", "s", "badreload.service")
            failed = sb.wait_for(lambda: "Reload failed." in sb.service_log("badreload.service"),
                                 10)
            st = sb.status("badreload.service")
            t.ok(err is None and failed and st["active"] == "active" and st["main_pid"] == bad,
                 "a failing ExecReload= is logged and the service keeps running",
                 f"{err} {st} {sb.service_log('badreload.service')[-300:]}")
        finally:
            peer.close()
        with open(os.path.join(sb.state, "log", "audit.log")) as f:
            audit = f.read()
        t.ok("verb=reload target=reloadable.service result=ok" in audit and
             "verb=reload target=plain.service result=error: cannot reload plain.service: it "
             "has no ExecReload=" in audit, "the audit log has each reload and its result", audit)


def host_pid(sb, pid):
    """The host pid of the sandbox's process pid."""
    for p in sb.namespace_pids():
        try:
            with open(f"/proc/{p}/status") as f:
                ns = [line.split()[-1] for line in f if line.startswith("NSpid:")]
        except OSError:
            continue
        if ns == [str(pid)]:
            return p
    return None


def oom_score_adj(sb, name):
    p = host_pid(sb, (sb.status(name) or {}).get("main_pid", 0))
    try:
        with open(f"/proc/{p}/oom_score_adj") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def test_reload_policy():
    """ReloadUnits after a policy file changed: the services that use it restart with the new
    settings, the others keep running; a broken policy changes nothing."""
    units = {"uses.service": IDLE % "uses" + "Policy=tune\n",
             "other.service": IDLE % "other"}
    policies = {"tune.policy": "# tuning\n[Service]\nOOMScoreAdjust=100\nRestartSec=3s\n"}
    with Sandbox(units, policies=policies) as sb:
        sb.start()
        sb.wait_state("uses.service", "active")
        sb.wait_state("other.service", "active")
        t.ok(oom_score_adj(sb, "uses.service") == 100, "the policy's OOMScoreAdjust=100 is in "
             "effect", oom_score_adj(sb, "uses.service"))
        uses = sb.status("uses.service")["main_pid"]
        other = sb.status("other.service")["main_pid"]
        with open(os.path.join(sb.config, "policies", "tune.policy"), "w") as f:
            f.write("# tuning\n[Service]\nOOMScoreAdjust=200\n\nRestartSec=5s\n")
        r = sb.ctl("reload")
        t.ok(r.returncode == 0 and r.stdout.split("\n")[0] == "changed uses.service (restarting)"
             and "other.service" not in r.stdout,
             "vigilctl reload after a policy change: the service using it changed", r.stdout)
        ok = sb.wait_for(lambda: (sb.status("uses.service") or {}).get("main_pid") not in
                         (0, uses) and sb.state_of("uses.service") == "active", 10)
        t.ok(ok and oom_score_adj(sb, "uses.service") == 200,
             "it restarted with the new OOMScoreAdjust=200", oom_score_adj(sb, "uses.service"))
        st = json.loads(sb.ctl("--json", "status", "uses").stdout)
        src = {s["key"]: s for s in st["settings"]}.get("Service.RestartSec", {})
        t.ok(src.get("value") == "5s" and src.get("source", "").endswith("tune.policy:5"),
             "status shows the policy's new RestartSec= and its file and line", src)
        t.ok(sb.status("other.service")["main_pid"] == other,
             "a service without the policy kept running")
        uses = sb.status("uses.service")["main_pid"]
        with open(os.path.join(sb.config, "policies", "tune.policy"), "a") as f:
            f.write("ExecStart=/bin/evil\n")
        r = sb.ctl("reload")
        time.sleep(0.3)
        t.ok(r.returncode == 1 and "tune.policy:6" in r.stderr and "nothing changed" in r.stderr
             and sb.status("uses.service")["main_pid"] == uses and
             oom_score_adj(sb, "uses.service") == 200,
             "a broken policy: reload fails, names the policy line, nothing changes", r.stderr)


MATRIX_UNITS = {
    "dbus.service": DBUS_UNIT, "game.service": IDLE % "game", "other.service": IDLE % "other",
    "idle.service": "[Service]\nExecStart=/bin/sleep 1000\n",
    "marked.service": """[Service]
ExecStart=/bin/sh -c 'trap "echo hup >> @WORK@/marks" HUP; trap "echo usr1 >> @WORK@/marks" USR1; \\
while :; do sleep 0.05; done'
ExecReload=/bin/kill -HUP $MAINPID
[Install]
WantedBy=multi-user.target
""",
    "fails.service": "[Service]\nExecStart=/bin/sh -c 'exit 3'\n[Install]\n"
                     "WantedBy=multi-user.target\n"}

# The read methods of org.vigil1.Manager (busctl arguments): open to every caller.
READS = {"ListServices": [], "GetService": ["s", "game.service"],
         "GetLogs": ["su", "game.service", "10"], "FollowLogs": ["s", "game.service"],
         "GetCrashRecords": ["su", "fails.service", "5"], "GetUpdateStatus": []}

# A client for StageUpdate (busctl cannot send file descriptors): buswire on the test bus as
# whoever runs it; prints [error name or null, reply args].
STAGE_CLIENT = r"""
import json, os, sys
sys.path.insert(0, sys.argv[1])
from buswire import Peer
peer = Peer(sys.argv[2])
peer.hello()
fds = [os.open(sys.argv[3] + s, os.O_RDONLY)
       for s in (".squashfs", ".manifest", ".manifest.minisig")]
print(json.dumps(peer.call("StageUpdate", "shhh", os.path.basename(sys.argv[3]), *fds)))
peer.close()
"""


def mutations(sb):
    """Every mutating method but Reboot and PowerOff: (method, busctl arguments or None for
    StageUpdate, audit verb, audit target, the error an allowed caller gets (None: success),
    whether the change happened)."""
    other = sb.status("other.service")["main_pid"]

    def setting(key):
        st = json.loads(sb.ctl("--json", "status", "game").stdout)
        return {x["key"]: x["value"] for x in st["settings"]}.get(key)

    return [
        ("StartService", ["s", "idle.service"], "start", "idle.service", None,
         lambda: sb.wait_state("idle.service", "active")),
        ("StopService", ["s", "game.service"], "stop", "game.service", None,
         lambda: sb.wait_state("game.service", "inactive")),
        ("RestartService", ["s", "other.service"], "restart", "other.service", None,
         lambda: sb.wait_for(lambda: (sb.status("other.service") or {}).get("main_pid")
                             not in (0, other), 10)),
        ("ReloadService", ["s", "marked.service"], "reload", "marked.service", None,
         lambda: sb.wait_for(lambda: "hup" in words(sb.work + "/marks"), 10)),
        ("KillService", ["si", "marked.service", "10"], "kill", "marked.service", None,
         lambda: sb.wait_for(lambda: "usr1" in words(sb.work + "/marks"), 10)),
        ("ResetFailed", ["s", "fails.service"], "reset-failed", "fails.service", None,
         lambda: sb.wait_state("fails.service", "inactive")),
        ("SetProperties", ["sba(sv)", "game.service", "true", "1", "RestartSec", "s", "7s"],
         "set-property", "game.service", None, lambda: setting("Service.RestartSec") == "7s"),
        ("ReloadUnits", [], "reload-units", "-", None,
         lambda: sb.status("added.service") is not None),
        # Staging copies the files; ApplyUpdates then finds the bundle and rejects it (the
        # signature is junk).
        ("StageUpdate", None, "update", "game-1.0", None, lambda: staged(sb)),
        ("ApplyUpdates", ["b", "false"], "update", "-", None, lambda: rejected(sb)),
        ("RollbackImage", ["s", "nosuch"], "update", "nosuch", "org.vigil1.Error.NoSuchImage",
         lambda: True)]


def staged(sb):
    incoming = os.path.join(sb.dir, "incoming")
    return any(files for _, _, files in os.walk(incoming))


def rejected(sb):
    """Whether the update engine rejected the staged bundle game-1.0 (audited)."""
    with open(os.path.join(sb.state, "log", "audit.log")) as f:
        return any("via=vigil verb=rejected" in line and "game-1.0.manifest.minisig" in line
                   for line in f)


def snapshot(sb):
    """What a mutating call could change: every service's state and process, game's settings,
    the marks of marked.service, what is staged."""
    rows = json.loads(sb.ctl("--json", "list").stdout)
    st = json.loads(sb.ctl("--json", "status", "game").stdout)
    incoming = os.path.join(sb.dir, "incoming")
    return ([(s["name"], s["active"], s["main_pid"], s["restarts"], s["result"]) for s in rows],
            st["settings"], words(sb.work + "/marks"),
            sorted(os.listdir(incoming)) if os.path.isdir(incoming) else [])


class Monitor:
    """busctl monitor on the test bus (as root): the error name of every error reply, by its
    message, since busctl call prints only the message."""

    def __init__(self, sb):
        self.proc = subprocess.Popen(["busctl", f"--address={bus_address(sb)}", "monitor",
                                      "--json=short"], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        self.errors = None
        time.sleep(0.3)  # until it is a monitor

    def stop(self):
        time.sleep(0.3)
        self.proc.terminate()
        out, _ = self.proc.communicate(10)
        self.errors = {}
        for line in out.splitlines():
            try:
                m = json.loads(line)
            except ValueError:
                continue
            if m.get("type") == "error":
                self.errors[m["payload"]["data"][0]] = m["error_name"]

    def name(self, r):
        """The error name of the reply busctl call printed in r (None: it succeeded)."""
        if r.returncode == 0:
            return None
        return self.errors.get(r.stderr.strip().removeprefix("Call failed: "), r.stderr)


def manager_methods(sb):
    import xml.etree.ElementTree as ET
    r = busctl(sb, "introspect", "--xml-interface", "org.vigil1", "/org/vigil1")
    try:
        root = ET.fromstring(r.stdout)
    except ET.ParseError:
        return set()
    return {x.get("name") for i in root.findall("interface")
            if i.get("name") == "org.vigil1.Manager" for x in i.findall("method")}


def test_matrix():
    """Every method of org.vigil1.Manager through the test bus (busctl; StageUpdate through
    buswire) as root, as a member of [Access] AdminGroup= and as an unprivileged user
    (setpriv): the mutating ones are for the first two only, denied ones are AccessDenied,
    change nothing and are audited; the read ones are open to all three."""
    callers = [("root", None, None, "0"), ("an AdminGroup= member", 65534, [4243], "65534"),
               ("an unprivileged user", 65534, None, "65534")]
    shutdown = ["Reboot", "PowerOff"]
    for who, uid, groups, audit_uid in callers:
        with Sandbox(MATRIX_UNITS) as sb:
            if not t.ok(start_with_bus(sb), f"matrix, {who}: vigil owns org.vigil1",
                        sb.vigil_log()[-2000:]):
                continue
            for n in ("game", "other", "marked"):
                sb.wait_state(n + ".service", "active")
            sb.wait_state("fails.service", "failed")
            allowed = uid is None or groups is not None
            if allowed and uid:
                creds = busctl(sb, "call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
                               "org.freedesktop.DBus", "GetConnectionCredentials", "s",
                               "org.vigil1")
                if "UnixGroupIDs" not in creds.stdout:
                    t.note("this dbus-daemon reports no UnixGroupIDs: AdminGroup= gives "
                           "nothing on the system bus, the admin row expects denials")
                    allowed = False
            if who == "root":
                methods = manager_methods(sb)
                listed = {m[0] for m in mutations(sb)} | set(shutdown) | set(READS)
                t.ok(methods and methods == listed, "the matrix covers every method of "
                     "org.vigil1.Manager", f"introspected {sorted(methods)} listed "
                     f"{sorted(listed)}")
            bundle = os.path.join(sb.work, "game-1.0")
            for suffix in (".squashfs", ".manifest", ".manifest.minisig"):
                with open(bundle + suffix, "w") as f:
                    f.write("not a real bundle\n")
            sb.write_unit("added.service", "[Service]\nExecStart=/bin/sleep 1000\n")

            for method, args in READS.items():
                r = busctl(sb, "call", "org.vigil1", "/org/vigil1", "org.vigil1.Manager",
                           method, *args, uid=uid, groups=groups)
                t.ok(r.returncode == 0, f"matrix, {who}: {method} is open", r.stderr)
            path = "/org/vigil1/service/game_2eservice"
            r = busctl(sb, "call", "org.vigil1", path, "org.freedesktop.DBus.Properties",
                       "GetAll", "s", "org.vigil1.Service", uid=uid, groups=groups)
            r2 = busctl(sb, "get-property", "org.vigil1", "/org/vigil1", "org.vigil1.Manager",
                        "NServices", uid=uid, groups=groups)
            t.ok(r.returncode == 0 and "MainPID" in r.stdout and r2.stdout.startswith("u "),
                 f"matrix, {who}: the properties of the manager and of a service are open",
                 r.stderr + r2.stderr)

            monitor = Monitor(sb)
            before = snapshot(sb)
            results = []
            for method, args, verb, target, error, changed in mutations(sb):
                if args is None:
                    cmd = ["setpriv", f"--reuid={uid}", f"--regid={uid}"] if uid else []
                    if uid:
                        cmd += [f"--groups={','.join(map(str, groups))}"] if groups else \
                            ["--clear-groups"]
                    r = subprocess.run(cmd + ["/usr/bin/python3", "-c", STAGE_CLIENT,
                                              os.path.dirname(os.path.abspath(__file__)),
                                              f"{sb.work}/bus.sock", bundle],
                                       capture_output=True, text=True, timeout=30)
                    try:
                        got = json.loads(r.stdout)[0]
                    except (ValueError, IndexError):
                        got = r.stdout + r.stderr
                else:
                    got = busctl(sb, "call", "org.vigil1", "/org/vigil1", "org.vigil1.Manager",
                                 method, *args, uid=uid, groups=groups)
                # The effect before the next call: a KillService right after ReloadService
                # would also hit the ExecReload= process.
                results.append((method, verb, target, error, allowed and changed(), got))
            for method in shutdown if not allowed else []:  # allowed: they end the sandbox
                r = busctl(sb, "call", "org.vigil1", "/org/vigil1", "org.vigil1.Manager",
                           method, uid=uid, groups=groups)
                results.append((method, method.lower(), "-", None, None, r))
            monitor.stop()
            with open(os.path.join(sb.state, "log", "audit.log")) as f:
                audit = f.read()
            for method, verb, target, error, changed, r in results:
                got = monitor.name(r) if isinstance(r, subprocess.CompletedProcess) else r
                line = f"uid={audit_uid} gid=- pid=- via=system-bus verb={verb} target={target}"
                if allowed:
                    t.ok(got == error and changed and f"{line} result=denied" not in audit and
                         line in audit,
                         f"matrix, {who}: {method} is allowed "
                         f"({error.rsplit('.', 1)[1] if error else 'success'}, the change "
                         "happens, audited)", f"{got} {audit[-500:]}")
                else:
                    t.ok(got == "org.vigil1.Error.AccessDenied" and
                         f"{line} result=denied" in audit,
                         f"matrix, {who}: {method} is AccessDenied and audited as denied",
                         f"{got} {audit[-500:]}")
            if not allowed:
                time.sleep(0.3)
                after = snapshot(sb)
                t.ok(after == before and sb.status("added.service") is None and
                     sb.proc.poll() is None,
                     f"matrix, {who}: nothing changed and vigil runs on",
                     f"before {before}\nafter {after}")
                continue
            shutdown_allowed(sb, who, "Reboot", uid, groups)
        with Sandbox({"dbus.service": DBUS_UNIT}) as sb:
            if allowed and start_with_bus(sb):
                shutdown_allowed(sb, who, "PowerOff", uid, groups)


def shutdown_allowed(sb, who, method, uid, groups):
    r = busctl(sb, "call", "org.vigil1", "/org/vigil1", "org.vigil1.Manager", method, uid=uid,
               groups=groups)
    rc = wait_exit(sb)
    t.ok(r.returncode == 0 and rc == 0, f"matrix, {who}: {method} is allowed (vigil --sandbox "
         "stops everything and exits 0)", f"{r.stderr} {rc}")


def wait_exit(sb, timeout=30):
    """vigil's exit status once it exits by itself; None if it is still running by then."""
    try:
        return sb.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None


t.run([test_access, test_reload, test_reset_and_properties, test_update, test_system_bus,
       test_python_dbus, test_signals, test_shutdown, test_reload_service,
       test_reload_policy, test_matrix])
