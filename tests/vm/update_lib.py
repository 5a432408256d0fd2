"""Update bundles of the test appliance's game-server image and checks of its image store, for
tests/vm/test_update.py: signed bundles made from the image the build put on the data disk,
staged offline into a data disk, and the store checked offline (after a power cut) or in the
guest (on the test channel)."""

import hashlib
import json
import os
import shutil
import struct
import subprocess
import time

from harness import ROOT, DataDisk, log, update_key

IMAGE = "teeworlds"
GAME = "teeworlds.service"
# In every bundle this test makes: the bundle's version. The image the build made has none.
MARKER = "/etc/vigil-update-marker"
# Random bytes (incompressible) in some bundles, for a longer install copy.
FILLER = "/usr/share/vigil-test-filler"
MKBUNDLE = os.path.join(ROOT, "image", "mkbundle")
# On the data disk (the guest's /var).
LIB = "/lib/vigil"
INCOMING = LIB + "/incoming"
STORE = f"{LIB}/images/{IMAGE}"
RECORD = f"{LIB}/state/updates/{IMAGE}.state"


def crash_elf(message):
    """A static x86-64 ELF executable that writes message to stderr and exits 1 at once:
    the "server" of a crash-looping image (the image has no shell to write a script in)."""
    base = 0x400000
    code = (b"\xb8\x01\x00\x00\x00"            # mov eax, 1 (write)
            b"\xbf\x02\x00\x00\x00"            # mov edi, 2
            b"\x48\x8d\x35\x13\x00\x00\x00"    # lea rsi, [rip + 19]: the message
            + b"\xba" + struct.pack("<I", len(message))  # mov edx, len
            + b"\x0f\x05"                      # syscall
            b"\xb8\x3c\x00\x00\x00"            # mov eax, 60 (exit)
            b"\xbf\x01\x00\x00\x00"            # mov edi, 1
            b"\x0f\x05")                       # syscall
    size = 64 + 56 + len(code) + len(message)
    ehdr = struct.pack("<16sHHIQQQIHHHHHH", b"\x7fELF\x02\x01\x01" + bytes(9), 2, 0x3E, 1,
                       base + 64 + 56, 64, 0, 0, 64, 56, 1, 64, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, size, size, 0x1000)
    return ehdr + phdr + code + message


def run(cmd, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)}: exit {r.returncode}\n{r.stdout.strip()}")
    return r.stdout


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Bundle:
    def __init__(self, version, crash, directory, sha256):
        self.version = version
        self.crash = crash
        self.stem = f"{IMAGE}-{version}"
        self.dir = directory
        self.sha256 = sha256
        self.files = [f"{self.stem}.squashfs", f"{self.stem}.manifest",
                      f"{self.stem}.manifest.minisig"]

    def __repr__(self):
        return f"{self.stem} ({'crash-looping' if self.crash else 'good'})"


class Bundles:
    """Makes bundles of new versions of the appliance's teeworlds image: the image the build
    installed on the appliance's data disk (its `current`), unpacked once, with MARKER saying
    the version, repacked, and signed with the key the test appliance trusts."""

    def __init__(self, adir, work):
        key = update_key()
        if key is None:
            raise AssertionError("minisign is not installed: no update bundle can be signed "
                                 "(apt-get install minisign)")
        self.secret = key[1]
        with open(os.path.join(adir, "appliance.json")) as f:
            disk = DataDisk(os.path.join(adir, json.load(f)["data"]))
        link = disk.readlink(STORE + "/current")
        if not link or not link.endswith(".squashfs") or "/" in link:
            raise AssertionError(f"{disk.path}: {STORE}/current is {link!r}, not VERSION.squashfs")
        self.base_version = link[:-len(".squashfs")]
        self.work = work
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        base = os.path.join(work, "base.squashfs")
        data = disk.read(f"{STORE}/{link}")
        with open(base, "wb") as f:
            f.write(data)
        self.base_sha256 = hashlib.sha256(data).hexdigest()
        # every version this test knows, with the digest of its only correct contents
        self.known = {self.base_version: self.base_sha256}
        self.known_size = {self.base_version: len(data)}
        self.tree = os.path.join(work, "root")
        run(["unsquashfs", "-q", "-n", "-d", self.tree, base])
        self.server = os.path.join(self.tree, "usr/games/teeworlds-server")
        if not os.path.isfile(self.server):
            raise AssertionError(f"the image {self.base_version} has no "
                                 "/usr/games/teeworlds-server")
        os.rename(self.server, os.path.join(work, "teeworlds-server.real"))
        self.count = 0
        log(f"installed image {IMAGE} {self.base_version} (sha256 {self.base_sha256[:16]}...)")

    def version_of(self, marker):
        """The running version from the marker's contents (None: no marker, the base)."""
        return marker.strip() if marker else self.base_version

    def make(self, crash=False, filler=0):
        """A new bundle, newer than every one made before (VERSION+uN); filler bytes of random
        data in FILLER make its install copy last longer."""
        self.count += 1
        version = f"{self.base_version}+u{self.count}"
        path = os.path.join(self.tree, FILLER.lstrip("/"))
        if filler:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(os.urandom(filler))
        elif os.path.exists(path):
            os.unlink(path)
        real = os.path.join(self.work, "teeworlds-server.real")
        if crash:
            with open(self.server, "wb") as f:
                f.write(crash_elf(f"teeworlds-server {version}: a crash-looping test build, "
                                  f"exiting 1\n".encode()))
            os.chmod(self.server, 0o755)
        else:
            shutil.copy2(real, self.server)
        marker = os.path.join(self.tree, MARKER.lstrip("/"))
        with open(marker, "w") as f:
            f.write(version + "\n")
        os.chmod(marker, 0o644)
        image = os.path.join(self.work, f"{version}.squashfs")
        run(["mksquashfs", self.tree, image, "-noappend", "-quiet", "-no-progress", "-all-root",
             "-mkfs-time", "0", "-all-time", "0"])
        out = os.path.join(self.work, "bundles")
        run([MKBUNDLE, "--key", self.secret, "--name", IMAGE, "--version", version, "--out", out,
             image], stdin=subprocess.DEVNULL)
        os.unlink(image)
        payload = os.path.join(out, f"{IMAGE}-{version}.squashfs")
        b = Bundle(version, crash, out, sha256_file(payload))
        self.known[version] = b.sha256
        self.known_size[version] = os.path.getsize(payload)
        self.last = b
        log(f"made bundle {b}: sha256 {b.sha256[:16]}...")
        return b

    def stage(self, disk, bundle):
        """Copies the bundle into the data disk's incoming/ (offline): payload and signature
        first, the manifest last, as `vigilctl update stage` would."""
        disk.mkdir_p(INCOMING)
        for f in (bundle.files[0], bundle.files[2], bundle.files[1]):
            disk.write(os.path.join(bundle.dir, f), f"{INCOMING}/{f}")


def parse_record(text):
    """The Key=value lines of a record; Rejected= (repeated) as a list of its values."""
    rec = {"Rejected": []}
    for line in text.splitlines():
        if "=" not in line:
            continue
        k, v = line.split("=", 1)
        if k == "Rejected":
            rec["Rejected"].append(v)
        else:
            rec[k] = v
    return rec


def rejected_digests(rec):
    return [r.split()[0] for r in rec.get("Rejected", []) if r.split()]


def store_state(disk):
    """What the data disk holds: {"files", "link", "record" (dict or None), "record_text",
    "incoming" (names directly in incoming/)}."""
    text = disk.read(RECORD)
    text = text.decode(errors="replace") if text is not None else None
    return {"files": disk.listdir(STORE) or [],
            "link": disk.readlink(STORE + "/current"),
            "record_text": text,
            "record": parse_record(text) if text is not None else None,
            "incoming": [n for n in (disk.listdir(INCOMING) or []) if n != "rejected"]}


def summary(st):
    rec = st["record"]
    if rec is None:
        r = "no record"
    else:
        r = f"Current={rec.get('Current', '?')}"
        if rec.get("Trial") == "yes":
            r += f" Trial=yes TrialBoots={rec.get('TrialBoots', '?')}"
        r += f" Previous={rec.get('Previous', '-')} rejected={len(rec['Rejected'])}"
    return (f"current -> {st['link']}; {r}; store: {' '.join(st['files'])}; incoming: "
            f"{' '.join(st['incoming']) or '-'}")


def check_offline(disk, known, base):
    """The consistency of the store on a data disk after a power cut (after disk.recover()):
    every VERSION.squashfs there is complete (the digest of what was made for VERSION),
    `current` selects one of them, and the record agrees with it: Current= is the selected
    version and Sha256= its digest, or (a cut between writing the record and switching the
    link) Current= is a complete file with digest Sha256= that the next boot selects.
    Returns (problems, notes, state)."""
    st = store_state(disk)
    problems, notes = [], []
    digests = {}
    for f in st["files"]:
        if f == "current":
            continue
        if f.startswith("."):
            notes.append(f"temporary {f} left (the next boot removes it)")
            continue
        if not f.endswith(".squashfs"):
            problems.append(f"{STORE}/{f}: not VERSION.squashfs")
            continue
        v = f[:-len(".squashfs")]
        digests[v] = disk.sha256(f"{STORE}/{f}")
        if v not in known:
            problems.append(f"{STORE}/{f}: a version this test never made")
        elif digests[v] != known[v]:
            problems.append(f"{STORE}/{f}: incomplete or altered: sha256 {digests[v]}, "
                            f"the bundle's is {known[v]}")
    link = st["link"]
    selected = None
    if link is None:
        problems.append(f"{STORE}/current is missing (or not a symbolic link)")
    elif "/" in link or not link.endswith(".squashfs") or link[:-len(".squashfs")] not in digests:
        problems.append(f"{STORE}/current -> {link}: not a VERSION.squashfs of the store")
    else:
        selected = link[:-len(".squashfs")]
    rec = st["record"]
    if rec is not None and selected is not None:
        cur, sha = rec.get("Current", ""), rec.get("Sha256", "")
        effective = None
        if cur == selected:
            effective = cur
            if sha and sha != digests[cur]:
                problems.append(f"the record says Current={cur} Sha256={sha}, but {link} has "
                                f"sha256 {digests[cur]}")
            elif not sha and cur != base:
                problems.append(f"the record says Current={cur} without Sha256=")
        elif cur in digests and digests[cur] == known.get(cur) and (
                sha == digests[cur] or (not sha and cur == base)):
            effective = cur
            notes.append(f"the record is ahead of the link (Current={cur}, current -> {link}): "
                         f"cut between the two; the next boot completes the link")
        else:
            problems.append(f"the record says Current={cur} Sha256={sha or '-'}, current -> "
                            f"{link}, and {cur}.squashfs is "
                            + ("missing" if cur not in digests else f"sha256 {digests[cur]}"))
        if effective and digests.get(effective) in rejected_digests(rec):
            problems.append(f"{effective} is selected but its digest is in Rejected=")
    return problems, notes, st


def guest_state(vm, base_version):
    """The store as the running guest sees it, and the version the game server runs: {"record"
    (dict or None), "link", "sha256" (of what current selects), "running" (the version in the
    server's root, from MARKER), "pid"}."""
    var = "/var" + LIB
    out = vm.check(f"cat {var}/state/updates/{IMAGE}.state 2>/dev/null; echo '=== link'; "
                   f"readlink {var}/images/{IMAGE}/current; echo '=== sha'; "
                   f"sha256sum {var}/images/{IMAGE}/$(readlink {var}/images/{IMAGE}/current)",
                   timeout=120)
    rec_text, rest = out.split("=== link\n", 1)
    link, sha = rest.split("=== sha\n", 1)
    st = {"record": parse_record(rec_text) if rec_text.strip() else None,
          "record_text": rec_text, "link": link.strip(),
          "sha256": sha.split()[0] if sha.split() else ""}
    st["pid"], st["running"] = None, None
    for _ in range(20):
        js = json.loads(vm.check(f"vigilctl --json status {GAME}"))
        pid = js.get("main_pid")
        if pid:
            rc, marker = vm.run(f"cat /proc/{pid}/root{MARKER} 2>/dev/null || "
                                f"test -d /proc/{pid}/root/usr/games")
            if rc == 0:
                st["pid"] = pid
                st["running"] = marker.strip() or base_version
                break
        time.sleep(1)
    return st


def check_guest(st, known):
    """Problems of a running guest's store: `current`, the record and the running server
    must agree, and the selected file must be complete."""
    problems = []
    rec = st["record"]
    link = st["link"]
    v = link[:-len(".squashfs")] if link.endswith(".squashfs") else None
    if v is None:
        problems.append(f"current -> {link!r}")
    elif st["sha256"] != known.get(v):
        problems.append(f"current -> {link}: sha256 {st['sha256']}, made as {known.get(v)}")
    if rec is not None:
        if rec.get("Current") != v:
            problems.append(f"the record says Current={rec.get('Current')}, current -> {link}")
        if rec.get("Sha256") and rec.get("Sha256") != st["sha256"]:
            problems.append(f"the record says Sha256={rec.get('Sha256')}, current has "
                            f"{st['sha256']}")
    if st["running"] is None:
        problems.append(f"no running {GAME} to read its version from")
    elif st["running"] != v:
        problems.append(f"{GAME} runs version {st['running']}, current selects {v}")
    return problems


def update_status(vm):
    """`vigilctl update status --json`, and the entry of IMAGE in it (None when missing)."""
    out = vm.check("vigilctl update status --json")
    js = json.loads(out)
    cands = js
    if isinstance(js, dict):
        cands = js.get("images") or js.get("records") or (
            [dict(v, name=k) for k, v in js.items() if isinstance(v, dict)] or [js])
    for e in cands if isinstance(cands, list) else []:
        if isinstance(e, dict) and IMAGE in (e.get("name"), e.get("image")):
            return js, e
    return js, None


def entry_current(e):
    return e.get("current") or e.get("version") or e.get("Current")


def entry_trial(e):
    t = e.get("trial", e.get("Trial"))
    return t not in (None, False, "", "no", 0)
