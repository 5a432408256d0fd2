#!/usr/bin/python3
"""Signed image updates in vigil --sandbox: bundles that must be rejected (and what a
rejection leaves untouched), a good update through its trial to promotion, automatic
rollbacks (start limit, HealthCmd=, TrialBootsMax=), installing at boot, an admin's
rollback, and the states a power cut can leave behind.

The sandbox's image store is DIR/images (DIR = the state directory's parent), staged bundles
are in DIR/incoming, records in STATE/updates/NAME.state, and the trusted keys in
CONFIG/trusted/*.pub."""

import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from bundles import Bundles, flip_base64, flip_byte, missing_tools, sha256  # noqa: E402
from buswire import Peer  # noqa: E402
from sandbox import Sandbox, Tap, require_root  # noqa: E402

require_root()
if missing_tools():
    print(f"1..0 # SKIP not installed: {' '.join(missing_tools())}")
    sys.exit(77)
t = Tap()
B = Bundles()

UNIT = """[Unit]
StartLimitBurst=@BURST@
StartLimitIntervalSec=60
[Service]
ExecStart=/bin/app
Restart=on-failure
RestartSec=200ms
BindPaths=@OUT@:/out
[Container]
Image=@IMAGE@
@EXTRA@
[Install]
WantedBy=multi-user.target
"""


# ---- the sandbox, its store and its records ----

def read(path):
    try:
        with open(path) as f:
            return f.read()
    except (FileNotFoundError, NotADirectoryError):
        return None


class Store:
    """The image-update view of a sandbox: images, incoming/, records, the services' /out."""

    def __init__(self, sb):
        self.sb = sb
        self.images = os.path.join(sb.dir, "images")
        self.incoming = os.path.join(sb.dir, "incoming")
        self.rejected = os.path.join(self.incoming, "rejected")
        self.updates = os.path.join(sb.state, "updates")
        os.makedirs(self.incoming, exist_ok=True)

    def add_unit(self, image, health=False, unit=None, burst=3):
        """unit (default IMAGE.service) runs /bin/app of image, with /out its own."""
        unit = unit or image + ".service"
        out = self.out(unit)
        os.makedirs(out, exist_ok=True)
        os.chmod(out, 0o777)
        extra = "HealthCmd=/bin/health" if health else ""
        self.sb.write_unit(unit, UNIT.replace("@OUT@", out).replace("@IMAGE@", image)
                           .replace("@EXTRA@", extra).replace("@BURST@", str(burst)))

    def out(self, unit):
        return os.path.join(self.sb.work, "out-" + unit)

    def starts(self, unit):
        """The versions the service started on, oldest first."""
        return (read(os.path.join(self.out(unit), "starts")) or "").split()

    def health(self, unit):
        return (read(os.path.join(self.out(unit), "health")) or "").split()

    def install(self, image, version, path, link=True):
        """Puts a squashfs in the store by hand, and points `current` at it."""
        d = os.path.join(self.images, image)
        os.makedirs(d, exist_ok=True)
        shutil.copyfile(path, os.path.join(d, version + ".squashfs"))
        if link:
            self.link(image, version)

    def link(self, image, version):
        cur = os.path.join(self.images, image, "current")
        if os.path.lexists(cur):
            os.unlink(cur)
        os.symlink(version + ".squashfs", cur)

    def current(self, image):
        try:
            return os.readlink(os.path.join(self.images, image, "current"))
        except OSError:
            return None

    def has_version(self, image, version):
        return os.path.exists(os.path.join(self.images, image, version + ".squashfs"))

    def record_text(self, image):
        return read(os.path.join(self.updates, image + ".state"))

    def record(self, image):
        """The record as a dict; Rejected= lines as a list under "Rejected"."""
        d = {"Rejected": []}
        for line in (self.record_text(image) or "").splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                if k == "Rejected":
                    d["Rejected"].append(v)
                else:
                    d[k] = v
        return d

    def write_record(self, image, **fields):
        os.makedirs(self.updates, exist_ok=True)
        with open(os.path.join(self.updates, image + ".state"), "w") as f:
            for k, v in fields.items():
                f.write(f"{k}={v}\n")

    def stage_files(self, stem_path, stem=None):
        """Stages a bundle by copying its files into incoming/ (as STEM.*)."""
        return Bundles.copy_to(stem_path, self.incoming, stem)

    def incoming_names(self):
        try:
            return sorted(n for n in os.listdir(self.incoming) if n != "rejected")
        except FileNotFoundError:
            return []

    def rejected_names(self):
        try:
            return sorted(os.listdir(self.rejected))
        except FileNotFoundError:
            return []

    # vigilctl
    def apply(self, force=False):
        """vigilctl --json update apply: (exit status, {stem: row} or None when it gave no
        rows, output)."""
        r = self.sb.ctl("--json", "update", "apply", *(["--force"] if force else []))
        rows = None  # None: no answer (not a list of rows)
        try:
            rows = {row["stem"]: row for row in json.loads(r.stdout)}
        except (ValueError, AttributeError, TypeError, KeyError):
            pass
        return r.returncode, rows, f"exit {r.returncode}\n{r.stdout}{r.stderr}"

    def update_status(self):
        r = self.sb.ctl("--json", "update", "status")
        try:
            return json.loads(r.stdout)
        except ValueError:
            return {"error": r.stdout + r.stderr}

    def image_status(self, image):
        for x in self.update_status().get("images") or []:
            if x.get("name") == image:
                return x
        return None

    def service(self, unit):
        """vigilctl --json status UNIT (with image_version), or {}."""
        r = self.sb.ctl("--json", "status", unit)
        try:
            return json.loads(r.stdout)
        except ValueError:
            return {}

    def running_on(self, unit, version):
        s = self.service(unit)
        return (s.get("active") == "active" and s.get("image_version") == version and
                (self.starts(unit) or [None])[-1] == version)

    def audit(self):
        return read(os.path.join(self.sb.state, "log", "audit.log")) or ""


def new_sandbox(conf="", images=("app",), health=False, burst=3):
    """A sandbox trusting the release key, with a unit per image (StartLimitBurst=burst in
    a minute), each image at version 1.0 installed by hand."""
    sb = Sandbox({}, conf=conf or None)
    st = Store(sb)
    B.trust(sb.config)
    for image in images:
        st.add_unit(image, health=health, burst=burst)
        st.install(image, "1.0", B.image("good", "1.0"))
    return sb, st


def started(sb, st, unit="app.service", version="1.0"):
    sb.start()
    return sb.wait_for(lambda: st.running_on(unit, version), 15, f"{unit} on {version}")


def explain(sb, st, image="app"):
    """What a failed check shows: the record, the store, incoming, the end of vigil's log."""
    d = os.path.join(st.images, image)
    return (f"record: {st.record_text(image)!r}\ncurrent -> {st.current(image)}\n"
            f"store: {sorted(os.listdir(d)) if os.path.isdir(d) else None}\n"
            f"incoming: {st.incoming_names()} rejected: {st.rejected_names()}\n"
            f"starts: {st.starts(image + '.service')}\n"
            "vigil log (end):\n" + "\n".join(sb.vigil_log().splitlines()[-25:]))


# ---- 1. bundles that must be rejected ----

def rejection_cases():
    """(description, stem as staged, stem path of its files, words one of which the reason
    must contain, force)."""
    cases = []

    def case(what, stem_path, words, stem=None):
        cases.append((what, stem or os.path.basename(stem_path), stem_path, words))

    b = B.bundle("app", "2.1")
    os.unlink(b + ".manifest.minisig")
    case("an unsigned bundle (no .minisig)", b, ["unsigned", "minisig"])

    b = B.bundle("app", "2.2", key="rogue")
    case("a bundle signed with an unknown key", b, ["not among the", "trusted key"])

    b = B.bundle("app", "2.3")
    flip_byte(b + ".squashfs", os.path.getsize(b + ".squashfs") // 2)
    case("a flipped byte in the payload", b, ["SHA-256", "altered"])

    b = B.bundle("app", "2.4")
    flip_byte(b + ".manifest", -3)  # a digit of Size=
    case("a flipped byte in the manifest", b, ["not valid"])

    b = B.bundle("app", "2.5")
    flip_base64(b + ".manifest.minisig", 1, 40)
    case("a flipped byte in the signature", b, ["not valid"])

    b = B.bundle("app", "2.5.1")
    with open(b + ".manifest.minisig") as f:
        sig = f.read().replace("\ntrusted comment: vigil", "\ntrusted comment: evil", 1)
    with open(b + ".manifest.minisig", "w") as f:
        f.write(sig)
    case("an altered trusted comment", b, ["trusted comment"])

    b = B.bundle("app", "2.6")
    os.truncate(b + ".squashfs", os.path.getsize(b + ".squashfs") // 2)
    case("a truncated payload", b, ["truncated", "Size="])

    b = B.bundle("app", "2.7", padding=2 << 20)
    case("a payload beyond MaxBundleSize=", b, ["larger", "MaxBundleSize", "too large"])

    b = B.bundle("other", "2.8")
    case("a manifest for another image than its file names say (other-2.8 as app-2.8)", b,
         ["other"], stem="app-2.8")

    b = B.bundle("ghost", "1.0")
    case("a bundle for an image no unit uses", b, ["unit", "Image=", "not used"])

    b = B.bundle("app", "0.9")
    case("a downgrade (0.9 while 1.0 runs)", b, ["older"])

    b = B.bundle("app", "1.0")
    case("the installed version again (1.0)", b, ["already installed"])

    good = B.bundle("app", "2.9")
    link_dir = os.path.dirname(B.bundle("app", "2.9"))  # a directory of its own
    b = os.path.join(link_dir, "app-2.9")
    os.unlink(b + ".squashfs")
    os.symlink(os.path.abspath(good + ".squashfs"), b + ".squashfs")
    case("a symbolic link as the payload (to the right bytes)", b, ["symbolic link"])

    payload = B.bundle("app", "3.1")
    m = Bundles.manifest(payload)
    text = (f"[Bundle]\nName=app\nVersion=3.1\nSHA256={m['SHA256']}\nSize={m['Size']}\n"
            "Version=3.1\n")
    case("a duplicate manifest line (Version= twice), signed",
         B.custom("app-3.1", text, payload), ["duplicate"])

    payload = B.bundle("app", "3.2")
    m = Bundles.manifest(payload)
    text = (f"[Bundle]\n# {'x' * 300}\nName=app\nVersion=3.2\nSHA256={m['SHA256']}\n"
            f"Size={m['Size']}\n")
    case("a 302-byte manifest line, signed", B.custom("app-3.2", text, payload),
         ["long", "256"])

    payload = B.bundle("app", "3.3")
    m = Bundles.manifest(payload)
    text = (f"[Bundle]\n" + f"# {'y' * 200}\n" * 25 + f"Name=app\nVersion=3.3\n"
            f"SHA256={m['SHA256']}\nSize={m['Size']}\n")
    case("a 5 KiB manifest, signed", B.custom("app-3.3", text, payload), ["4096", "larger"])
    return cases


def test_rejections():
    sb, st = new_sandbox(conf="[Update]\nMaxBundleSize=1536K\n")
    with sb:
        cases = rejection_cases()
        ok = started(sb, st)
        if not t.ok(ok, "rejections: app.service runs on image app 1.0", explain(sb, st)):
            return
        rejected = 0
        for what, stem, stem_path, words in cases:
            before = (st.record_text("app"), st.current("app"), st.service("app.service"))
            st.stage_files(stem_path, stem)
            rc, rows, out = st.apply()
            row = (rows or {}).get(stem) or {}
            reason = read(os.path.join(st.rejected, stem + ".reason")) or ""
            after = st.service("app.service")
            problems = []
            if row.get("outcome") != "rejected":
                problems.append(f"outcome {row.get('outcome')!r}, not rejected")
            if rc == 0:
                problems.append("vigilctl update apply exited 0")
            if not any(w.lower() in (reason + row.get("reason", "")).lower() for w in words):
                problems.append(f"the reason names none of {words}")
            if any(n.startswith(stem + ".") for n in st.incoming_names()):
                problems.append("the bundle is still in incoming/")
            moved = [os.path.basename(f) for f in Bundles.files(stem_path)]
            moved = [stem + n[len(os.path.basename(stem_path)):] for n in moved]
            if not all(os.path.lexists(os.path.join(st.rejected, n)) for n in moved):
                problems.append(f"not all of {moved} are in incoming/rejected/")
            if not reason:
                problems.append(f"no incoming/rejected/{stem}.reason")
            if (st.record_text("app"), st.current("app")) != before[:2]:
                problems.append("the record or the current link changed")
            if (after.get("active") != "active" or not after.get("image_version")
                    or after.get("image_version") != before[2].get("image_version")
                    or after.get("main_pid") != before[2].get("main_pid")):
                problems.append("the service is not the same process on the same version")
            rejected += not problems
            t.ok(not problems, f"rejected: {what}",
                 "; ".join(problems) + f"\nreason file: {reason!r}\napply: {out}\n"
                 + explain(sb, st))
        t.note(f"bundles rejected with the expected reason, nothing else touched: "
               f"{rejected}/{len(cases)}")

        # Staging refuses a payload beyond MaxBundleSize= while copying it.
        big = B.bundle("app", "2.7", padding=2 << 20)
        r = sb.ctl("update", "stage", big + ".squashfs")
        t.ok(r.returncode != 0 and not any(n.startswith("app-2.7.") for n in st.incoming_names()),
             "update stage refuses a payload beyond MaxBundleSize= and leaves nothing staged",
             f"exit {r.returncode}: {r.stdout}{r.stderr}\nincoming: {st.incoming_names()}")

        # Names that try to leave incoming/: through StageUpdate (vigilctl never sends
        # them), and as files already in incoming/.
        test_stem_tricks(sb, st)

        # The downgrade again, forced: accepted.
        st.stage_files(B.bundle("app", "0.9"))
        rc, rows, out = st.apply(force=True)
        ok = ((rows or {}).get("app-0.9") or {}).get("outcome") == "installed"
        ok = ok and sb.wait_for(lambda: st.running_on("app.service", "0.9"), 15)
        t.ok(ok and st.current("app") == "0.9.squashfs",
             "the same downgrade with apply --force is installed and runs", out + explain(sb, st))


def test_stem_tricks(sb, st):
    good = B.bundle("app", "2.0")
    before = (st.record_text("app"), st.current("app"), st.service("app.service").get("main_pid"))
    peer = Peer(sb.socket)

    def stage(stem):
        fds = [os.open(good + s, os.O_RDONLY) for s in
               (".squashfs", ".manifest", ".manifest.minisig")]
        try:
            return peer.call("StageUpdate", "shhh", stem, *fds)
        finally:
            for fd in fds:
                os.close(fd)

    try:
        # The control: the same call with a good stem stages the bundle.
        err, args = stage("app-2.0")
        staged = st.incoming_names()
        t.ok(err is None and staged == ["app-2.0.manifest", "app-2.0.manifest.minisig",
                                        "app-2.0.squashfs"],
             "StageUpdate(\"app-2.0\", three fds) stages the three files",
             f"{err} {args}; incoming: {staged}")
        for n in staged:
            os.unlink(os.path.join(st.incoming, n))
        refused = 0
        stems = ["..", "../escape-1.0", "app-2.0/../../escape-1.0", "/tmp/escape-1.0",
                 ".app-2.0", "app/2.0"]
        details, errors = [], set()
        for stem in stems:
            err, args = stage(stem)
            details.append(f"{stem!r}: {err} {args}")
            errors.add(err)
            refused += err not in (None, "(no reply)", "org.freedesktop.DBus.Error.UnknownMethod")
    finally:
        peer.close()
    escaped = [os.path.join(dp, n) for dp, _, ns in os.walk(sb.dir) for n in ns
               if "escape" in n] + [p for p in ("/tmp/escape-1.0.squashfs",
                                                "/tmp/escape-1.0.manifest") if os.path.exists(p)]
    t.note(f"StageUpdate errors for those stems: {sorted(str(e) for e in errors)}")
    t.ok(refused == len(stems) and not escaped and not st.incoming_names(),
         f"StageUpdate refuses stems with '..', '/' or a leading '.' ({refused}/{len(stems)}), "
         "writing nothing", "\n".join(details) + f"\nwritten: {escaped}\n"
         f"incoming: {st.incoming_names()}")

    # The same tricks as files: "..", and a leading ".": STEM "..", ".app-2.0".
    for stem in ("..", ".app-2.0"):
        Bundles.copy_to(good, st.incoming, stem)
    rc, rows, out = st.apply()
    after = (st.record_text("app"), st.current("app"), st.service("app.service").get("main_pid"))
    t.ok(rows is not None and after == before and not st.has_version("app", "2.0") and
         not any(r.get("outcome") == "installed" for r in rows.values()),
         "bundle files named '..*' or '.app-2.0.*' in incoming/ install nothing",
         out + explain(sb, st))
    outside = [n for n in os.listdir(sb.dir) if n.endswith((".squashfs", ".manifest", ".reason"))]
    t.ok(rows is not None and not outside and not os.path.exists(os.path.join(sb.dir, "rejected")),
         "... and nothing is moved out of incoming/ by their names", f"{outside}")
    t.note("names with a leading '.' in incoming/: " + (
        "rejected (" + ", ".join(f"{k}: {v.get('reason')}" for k, v in rows.items()) + ")"
        if rows else "ignored, left in place" if rows is not None else "no answer"))
    for n in st.incoming_names():
        os.unlink(os.path.join(st.incoming, n))


# ---- 2 and 6. a good update: trial, promotion, then an admin's rollback ----

def test_good_update():
    sb, st = new_sandbox(conf="[Update]\nTrialHealthySec=3s\n")
    with sb:
        b = B.bundle("app", "2.0")
        digest = sha256(b + ".squashfs")
        if not t.ok(started(sb, st), "good update: app.service runs on 1.0", explain(sb, st)):
            return
        peer = Peer(sb.socket)
        try:
            good_update(sb, st, b, digest, peer)
        finally:
            peer.close()


def good_update(sb, st, b, digest, peer):
    r = sb.ctl("update", "stage", b + ".squashfs")
    staged = sorted(n for n in st.incoming_names() if n.startswith("app-2.0."))
    status = st.update_status()
    t.ok(r.returncode == 0 and staged == ["app-2.0.manifest", "app-2.0.manifest.minisig",
                                          "app-2.0.squashfs"],
         "update stage PATH copies the three files into incoming/",
         f"exit {r.returncode}: {r.stderr}\nincoming: {st.incoming_names()}")
    t.ok("app-2.0" in (status.get("staged") or []), "update status lists it as staged",
         json.dumps(status))
    pid = st.service("app.service").get("main_pid")
    t0 = time.monotonic()
    rc, rows, out = st.apply()
    row = (rows or {}).get("app-2.0") or {}
    t.ok(rc == 0 and row.get("outcome") == "installed" and row.get("image") == "app" and
         row.get("version") == "2.0", "apply: app-2.0 installed", out)
    rec = st.record("app")
    t.ok(rec.get("Current") == "2.0" and rec.get("Previous") == "1.0" and
         rec.get("Trial") == "yes" and rec.get("Sha256") == digest and
         st.current("app") == "2.0.squashfs",
         "the record says Current=2.0 Previous=1.0 Trial=yes and its digest; current -> 2.0",
         explain(sb, st))
    t.ok(staged and row.get("outcome") == "installed" and
         not any(n.startswith("app-2.0.") for n in st.incoming_names() + st.rejected_names()),
         "the installed bundle has left incoming/", explain(sb, st))
    ok = sb.wait_for(lambda: st.running_on("app.service", "2.0"), 15)
    s = st.service("app.service")
    t.ok(ok and s.get("main_pid") != pid,
         "the service restarts on 2.0 (its ImageVersion and its own /etc/version)",
         f"{s}\n" + explain(sb, st))
    img = st.image_status("app") or {}
    t.ok(img.get("trial") is True and img.get("current") == "2.0" and
         img.get("previous") == "1.0", "update status: 2.0 on trial, previous 1.0",
         json.dumps(img))
    t.note(f"trial status: {img.get('trial_status')!r}")

    ok = sb.wait_for(lambda: st.record("app").get("Trial") != "yes", 20, "promotion")
    promoted_after = time.monotonic() - t0
    rec = st.record("app")
    t.ok(ok and rec.get("Current") == "2.0" and rec.get("Previous") == "1.0" and
         rec.get("Sha256") == digest and st.current("app") == "2.0.squashfs",
         "promoted after TrialHealthySec=3s: Trial= cleared, Previous=1.0 kept",
         explain(sb, st))
    t.ok(ok and promoted_after >= 3, f"... not before TrialHealthySec=3s "
         f"({promoted_after:.1f}s after apply)")
    t.note(f"installed to promoted: {promoted_after:.1f}s")
    img = st.image_status("app") or {}
    t.ok(img.get("trial") is False and img.get("current") == "2.0" and
         img.get("previous") == "1.0" and img.get("sha256") == digest,
         "update status: 2.0 not on trial, previous 1.0", json.dumps(img))
    t.ok(st.has_version("app", "1.0") and st.has_version("app", "2.0"),
         "the previous version's file is kept")
    t.ok(st.running_on("app.service", "2.0") and
         st.service("app.service").get("restarts") == s.get("restarts"),
         "the service kept running through the promotion")
    sb.wait_for(lambda: len(peer.members("ImageUpdate")) >= 2, 3)
    sigs = [a for a in peer.members("ImageUpdate") if a and a[1] == "app"]
    kinds = [a[0] for a in sigs]
    t.ok(len(set(kinds)) >= 2 and all(a[2] == "2.0" for a in sigs),
         "ImageUpdate signals for the install and the promotion of app 2.0",
         f"{peer.members('ImageUpdate')} error {peer.error}")
    t.note(f"ImageUpdate signals: {sigs}")

    # 6. An admin's rollback after the promotion.
    pid = st.service("app.service").get("main_pid")
    r = sb.ctl("update", "rollback", "app")
    ok = r.returncode == 0 and sb.wait_for(lambda: st.running_on("app.service", "1.0"), 15)
    rec = st.record("app")
    t.ok(ok and st.current("app") == "1.0.squashfs" and rec.get("Current") == "1.0" and
         rec.get("Trial") != "yes" and st.service("app.service").get("main_pid") != pid,
         "update rollback app: 1.0 selected, the service restarted on it",
         f"exit {r.returncode}: {r.stderr}\n" + explain(sb, st))
    t.ok(any(x.startswith(digest) and "admin" in x for x in rec["Rejected"]) and
         not st.has_version("app", "2.0"),
         "the rolled back digest is rejected (\"... by an admin\") and 2.0.squashfs deleted",
         explain(sb, st))
    t.ok("verb=rolled-back target=app:2.0" in st.audit(), "the audit log has the rollback",
         st.audit())
    t.ok(any(a and a[1] == "app" and a[2] in ("1.0", "2.0") and "roll" in a[0].lower()
             for a in peer.members("ImageUpdate")),
         "an ImageUpdate signal for the rollback", f"{peer.members('ImageUpdate')}")
    rolled = ok
    r = sb.ctl("update", "rollback", "app")
    t.ok(rolled and r.returncode != 0 and r.stderr.strip() and st.current("app") == "1.0.squashfs",
         "a second rollback, with no previous version left, fails saying why",
         f"exit {r.returncode}: {r.stderr}")
    r = sb.ctl("update", "rollback", "nosuch")
    t.ok(r.returncode != 0 and "nosuch" in r.stderr,
         "rollback of an image no unit uses fails naming it", f"exit {r.returncode}: {r.stderr}")


# ---- 3. a crash-looping update is rolled back ----

def test_crash_loop():
    sb, st = new_sandbox(conf="[Update]\nTrialHealthySec=30s\nTrialTimeoutSec=120s\n")
    with sb:
        b = B.bundle("app", "3.0", kind="crash")
        digest = sha256(b + ".squashfs")
        if not t.ok(started(sb, st), "crash loop: app.service runs on 1.0", explain(sb, st)):
            return
        r = sb.ctl("update", "stage", b)
        rc, rows, out = st.apply()
        row = (rows or {}).get("app-3.0") or {}
        t.ok(r.returncode == 0 and row.get("outcome") == "installed",
             "a bundle whose service exits 1 is installed (its signature is good)",
             f"stage: {r.stderr}\napply: {out}")
        t0 = time.monotonic()
        ok = sb.wait_for(lambda: st.current("app") == "1.0.squashfs" and
                         st.running_on("app.service", "1.0"), 30, "the rollback")
        took = time.monotonic() - t0
        starts = st.starts("app.service")
        t.ok(ok and starts.count("3.0") >= 2 and starts[-1] == "1.0",
             "3.0 exits 1 until StartLimitBurst=3 is hit: rolled back, runs on 1.0 again",
             f"starts {starts}\n" + explain(sb, st))
        t.note(f"rolled back {took:.1f}s after apply; starts: {' '.join(starts)}")
        rec = st.record("app")
        bad = [x for x in rec["Rejected"] if x.startswith(digest)]
        t.ok(rec.get("Current") == "1.0" and rec.get("Trial") != "yes" and bad and
             len(bad[0].split(None, 2)) == 3, "the record: Current=1.0, not on trial, "
             "Rejected= the 3.0 digest with a reason", explain(sb, st))
        t.note(f"Rejected={bad[0] if bad else None}")
        t.ok(bad and not st.has_version("app", "3.0") and st.has_version("app", "1.0"),
             "3.0.squashfs is deleted, 1.0 kept", explain(sb, st))
        img = st.image_status("app") or {}
        t.ok(any(x.get("digest") == digest and x.get("version") == "3.0" and x.get("reason")
                 for x in img.get("rejected") or []),
             "update status lists the digest as rejected, with its reason", json.dumps(img))
        audit = st.audit()
        t.ok("verb=rolled-back target=app:3.0" in audit,
             "the audit log has the rollback of app 3.0", audit)

        st.stage_files(b)
        rc, rows, out = st.apply()
        row = (rows or {}).get("app-3.0") or {}
        reason = (row.get("reason") or "") + (
            read(os.path.join(st.rejected, "app-3.0.reason")) or "")
        t.ok(row.get("outcome") == "rejected" and ("roll" in reason or "reject" in reason) and
             st.running_on("app.service", "1.0"),
             "staging the same bundle again: rejected, its digest was rolled back",
             out + explain(sb, st))


# ---- 4. HealthCmd= ----

def test_health():
    # TrialTimeoutSec= leaves room for the healthy 2.0 on a loaded machine (1 s up, one check)
    sb, st = new_sandbox(conf="[Update]\nTrialHealthySec=1s\nTrialTimeoutSec=5s\n", health=True,
                         burst=10)
    with sb:
        if not t.ok(started(sb, st), "HealthCmd=: app.service runs on 1.0", explain(sb, st)):
            return
        st.stage_files(B.bundle("app", "2.0"))
        rc, rows, out = st.apply()
        ok = ((rows or {}).get("app-2.0") or {}).get("outcome") == "installed"
        ok = ok and sb.wait_for(lambda: st.record("app").get("Trial") != "yes", 15, "promotion")
        t.ok(ok and st.record("app").get("Current") == "2.0" and "2.0" in st.health("app.service"),
             "a HealthCmd= that exits 0, run in the new image, lets 2.0 be promoted",
             f"health runs on {st.health('app.service')}\n{out}" + explain(sb, st))

        b = B.bundle("app", "4.0", kind="unhealthy")
        digest = sha256(b + ".squashfs")
        st.stage_files(b)
        rc, rows, out = st.apply()
        t0 = time.monotonic()
        t.ok(((rows or {}).get("app-4.0") or {}).get("outcome") == "installed",
             "a bundle whose HealthCmd= exits 1 is installed", out)
        promoted = []

        def rolled_back():
            rec = st.record("app")
            if rec.get("Current") == "4.0" and rec.get("Trial") == "no" and not promoted:
                promoted.append(f"{time.monotonic() - t0:.1f}s after apply")
            return st.current("app") == "2.0.squashfs" and st.running_on("app.service", "2.0")

        ok = sb.wait_for(rolled_back, 20, "the rollback")
        took = time.monotonic() - t0
        t.ok(not promoted, "a version whose HealthCmd= exits 1 is never promoted",
             f"promoted {promoted[0] if promoted else ''}\n" + explain(sb, st))
        rec = st.record("app")
        bad = [x for x in rec["Rejected"] if x.startswith(digest)]
        t.ok(ok and "4.0" in st.starts("app.service") and "4.0" in st.health("app.service"),
             "it ran, its HealthCmd= ran in its own image, and it is rolled back to 2.0",
             f"starts {st.starts('app.service')} health {st.health('app.service')}\n"
             + explain(sb, st))
        t.ok(ok and took >= 4.5, f"... not before TrialTimeoutSec=5s ({took:.1f}s after apply)")
        t.ok(bad and any(w in bad[0].lower() for w in ("health", "timeout", "timed out")),
             "the rejection's reason names the health check or the timeout", explain(sb, st))
        t.note(f"Rejected={bad[0] if bad else None}")
        t.ok(not st.has_version("app", "4.0") and rec.get("Current") == "2.0",
             "4.0.squashfs deleted, the record back on 2.0", explain(sb, st))


# ---- a rollback right after quick updates ----

def test_rollback_start_limit():
    """Three starts in a minute (boot, two updates) use up StartLimitBurst=3: the restart
    a rollback makes must still bring the service back."""
    sb, st = new_sandbox(conf="[Update]\nTrialHealthySec=1s\n")
    with sb:
        if not t.ok(started(sb, st), "quick updates: app.service runs on 1.0", explain(sb, st)):
            return
        st.stage_files(B.bundle("app", "2.0"))
        st.apply()
        ok = sb.wait_for(lambda: st.record("app").get("Trial") == "no", 15, "promotion")
        st.stage_files(B.bundle("app", "2.1"))
        st.apply()
        ok = ok and sb.wait_for(lambda: st.running_on("app.service", "2.1"), 15)
        if not t.ok(ok, "1.0, then 2.0 promoted, then 2.1 on trial: three starts in a minute",
                    explain(sb, st)):
            return
        r = sb.ctl("update", "rollback", "app")
        ok = sb.wait_for(lambda: st.running_on("app.service", "2.0"), 10)
        t.ok(r.returncode == 0 and ok and st.current("app") == "2.0.squashfs",
             "a rollback then restarts the service on 2.0 although StartLimitBurst=3 is used up",
             f"exit {r.returncode} {r.stderr}\nservice {st.service('app.service').get('result')}\n"
             + explain(sb, st))


# ---- 5. a bundle staged before boot is installed before the first start ----

def test_apply_at_start():
    sb, st = new_sandbox()
    with sb:
        b = B.bundle("app", "2.0")
        st.stage_files(b)
        sb.start()
        ok = sb.wait_for(lambda: st.starts("app.service"), 15, "the first start")
        t.ok(ok and st.starts("app.service")[0] == "2.0" and
             sb.wait_for(lambda: st.running_on("app.service", "2.0"), 5),
             "a bundle in incoming/ at boot is installed before the service's first start",
             f"starts {st.starts('app.service')}\n" + explain(sb, st))
        rec = st.record("app")
        t.ok(rec.get("Current") == "2.0" and rec.get("Previous") == "1.0" and
             rec.get("Trial") == "yes" and rec.get("Sha256") == sha256(b + ".squashfs") and
             not st.incoming_names(),
             "... on trial, and gone from incoming/", explain(sb, st))


# ---- 7. TrialBootsMax= ----

def test_trial_boots():
    sb, st = new_sandbox(conf="[Update]\nTrialBootsMax=3\n", images=("app", "bpp"))
    with sb:
        two = B.image("good", "2.0")
        d1, d2 = sha256(B.image("good", "1.0")), sha256(two)
        for image, boots in (("app", 3), ("bpp", 1)):
            st.install(image, "2.0", two)
            st.write_record(image, Current="2.0", Sha256=d2, Previous="1.0", PreviousSha256=d1,
                            Trial="yes", TrialBoots=boots)
        sb.start()
        ok = sb.wait_for(lambda: st.starts("app.service") and st.starts("bpp.service"), 15)
        rec = st.record("app")
        t.ok(ok and st.starts("app.service")[0] == "1.0" and st.current("app") == "1.0.squashfs"
             and rec.get("Current") == "1.0" and any(x.startswith(d2) for x in rec["Rejected"])
             and not st.has_version("app", "2.0"),
             "TrialBoots=3 at TrialBootsMax=3 when vigil starts: rolled back before the "
             "service starts", f"starts {st.starts('app.service')}\n" + explain(sb, st))
        t.note(f"Rejected={rec['Rejected']}")
        rec = st.record("bpp")
        t.ok(ok and st.starts("bpp.service")[0] == "2.0" and rec.get("Current") == "2.0" and
             rec.get("Trial") == "yes" and rec.get("TrialBoots") == "2",
             "TrialBoots=1: still on trial, this boot counted (TrialBoots=2)",
             explain(sb, st, "bpp"))


# ---- 8. what a power cut leaves ----

def test_power_cut():
    sb, st = new_sandbox(images=("pa", "pb", "pc"))
    with sb:
        one = B.image("good", "1.0")
        d1 = sha256(one)
        # pa: cut between writing the record and renaming the link.
        b = B.bundle("pa", "2.0")
        st.install("pa", "2.0", b + ".squashfs", link=False)
        st.write_record("pa", Current="2.0", Sha256=sha256(b + ".squashfs"), Previous="1.0",
                        PreviousSha256=d1, Trial="yes", TrialBoots=0)
        # pb: the same, but the file never got there.
        b = B.bundle("pb", "2.0")
        st.write_record("pb", Current="2.0", Sha256=sha256(b + ".squashfs"), Previous="1.0",
                        PreviousSha256=d1, Trial="yes", TrialBoots=0)
        # pc: cut after the link, before the bundle left incoming/.
        c = B.bundle("pc", "2.0")
        st.install("pc", "2.0", c + ".squashfs")
        st.write_record("pc", Current="2.0", Sha256=sha256(c + ".squashfs"), Previous="1.0",
                        PreviousSha256=d1, Trial="yes", TrialBoots=0)
        st.stage_files(c)
        sb.start()
        ok = sb.wait_for(lambda: all(st.starts(f"p{x}.service") for x in "abc"), 15)
        t.ok(ok and st.current("pa") == "2.0.squashfs" and
             st.record("pa").get("Current") == "2.0" and
             st.starts("pa.service")[0] == "2.0",
             "record Current=2.0, link on 1.0, 2.0.squashfs there: the link is completed "
             "before the first start", f"starts {st.starts('pa.service')}\n" +
             explain(sb, st, "pa"))
        rec = st.record("pb")
        t.ok(ok and st.current("pb") == "1.0.squashfs" and rec.get("Current") == "1.0" and
             st.starts("pb.service")[0] == "1.0",
             "record Current=2.0 but no 2.0.squashfs: the record goes back to the link's 1.0",
             explain(sb, st, "pb"))
        rec = st.record("pc")
        t.ok(ok and not st.incoming_names() and not st.rejected_names() and
             rec.get("Current") == "2.0" and st.current("pc") == "2.0.squashfs" and
             st.starts("pc.service")[0] == "2.0",
             "the installed bundle still in incoming/ is removed, not rejected",
             explain(sb, st, "pc"))
        t.ok(ok and not st.incoming_names() and
             "reject" not in "\n".join(line for line in sb.vigil_log().splitlines()
                                       if "pc-2.0" in line).lower(),
             "... silently (no rejection logged)", sb.vigil_log())


try:
    for test in [test_rejections, test_good_update, test_crash_loop, test_health,
                 test_rollback_start_limit, test_apply_at_start, test_trial_boots,
                 test_power_cut]:
        try:
            test()
        except Exception as e:  # a broken test must not hide the others
            import traceback
            t.ok(False, f"{test.__name__} raised", traceback.format_exc())
finally:
    B.cleanup()
t.done()
