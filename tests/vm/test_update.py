"""Signed image updates of the game server (init/update.h): a bundle staged on the data disk
is installed at boot, runs on trial and is promoted after [Update] TrialHealthySec=; a
crash-looping one is rolled back to the old version and its digest rejected; and power cuts
(qemu killed) at random moments from early boot through the install to well into the trial
always leave a complete image selected that the record agrees with, and a game server that
answers at the next boot.

Environment: VIGIL_VM_CUTS=N power cuts (default 20), VIGIL_VM_SEED=N their random seed
(printed; the same seed gives the same plan)."""

import json
import os
import random
import re
import subprocess
import time

import update_lib as U
from harness import SLOW, VM, WORK, DataDisk, fsck_clean, log, step

TRIAL_HEALTHY = 30  # [Update] TrialHealthySec= default: the appliance's vigil.conf keeps it
CUTS = int(os.environ.get("VIGIL_VM_CUTS") or 20)
# Filler in the power-cut series' bundles: a longer install copy to cut.
FILLER = 24 << 20
MOUNTED = r"Mounted (LABEL=\S+ \()?/dev/vda\)? on /var\."
LOADED = r"Loaded \d+ services from"  # then the staged bundles are installed
INSTALLED = r"Image teeworlds: installed version"
STARTED = r"teeworlds\.service: Started\."
VAR_LIB = "/var" + U.LIB


class Timeline:
    """Seconds after qemu starts, as scenario 1 measured them (defaults until it has): the data
    disk mounted, the units loaded (the staged bundle is installed then), the bundle
    installed, the game server started, answering; and the size of that bundle's payload."""

    def __init__(self):
        self.mounted = 8.0 * SLOW
        self.loaded = 9.0 * SLOW
        self.installed = 10.0 * SLOW
        self.started = 11.0 * SLOW
        self.game = 12.0 * SLOW
        self.size = 15 << 20
        self.measured = False

    def __str__(self):
        return (f"/var mounted {self.mounted:.1f} s, units loaded {self.loaded:.1f} s, bundle "
                f"installed {self.installed:.1f} s, {U.GAME} started {self.started:.1f} s, "
                f"answers {self.game:.1f} s after qemu started"
                + ("" if self.measured else " (defaults: not measured)"))


def log_block(title, text):
    log(title)
    for line in text.strip("\n").splitlines():
        log("  " + line)


def watch_console(vm, patterns, timeout):
    """Polls the console every 20 ms until every regex of patterns has appeared: {regex:
    seconds after qemu started when it was first seen}."""
    seen = {}
    deadline = time.monotonic() + timeout
    while len(seen) < len(patterns):
        text = vm.console()
        for p in patterns:
            if p not in seen and re.search(p, text, re.M):
                seen[p] = vm.elapsed()
        if len(seen) == len(patterns):
            break
        if not vm.alive():
            raise AssertionError(f"qemu exited; not seen on the console: "
                                 f"{[p for p in patterns if p not in seen]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"not on the console after {timeout:.0f} s: "
                                 f"{[p for p in patterns if p not in seen]}")
        time.sleep(0.02)
    return seen


def guest_record(vm):
    rc, out = vm.run(f"cat {VAR_LIB}/state/updates/{U.IMAGE}.state")
    return U.parse_record(out) if rc == 0 else None


def incoming_stems(names):
    return sorted({re.sub(r"\.(squashfs|manifest|manifest\.minisig|reason)$", "", n)
                   for n in names if not n.startswith(".")})


def check_running(vm, bundles, version):
    """The guest's store is consistent, and the game server runs version."""
    st = U.guest_state(vm, bundles.base_version)
    problems = U.check_guest(st, bundles.known)
    if st["running"] != version:
        problems.append(f"{U.GAME} runs {st['running']}, expected {version}")
    if problems:
        raise AssertionError("; ".join(problems) + f"\nrecord:\n{st['record_text']}")
    return st


# ---------------------------------------------------------------- 1: promoted

def promoted(tap, adir, bundles, tl):
    good = bundles.make()
    vm = VM(adir, name="update-promote")
    bundles.stage(DataDisk(vm.data), good)
    with vm:
        def boot():
            seen = watch_console(vm, [MOUNTED, LOADED, INSTALLED, STARTED], 180 * SLOW)
            vm.wait_game()
            tl.mounted, tl.loaded, tl.installed, tl.started = (
                seen[MOUNTED], seen[LOADED], seen[INSTALLED], seen[STARTED])
            tl.game = vm.elapsed()
            tl.size = bundles.known_size[good.version]
            tl.measured = True
            log(f"update 1: {tl}")
            return True
        if not step(tap, vm, "update 1: boots with a good bundle staged; the game server "
                    "answers", boot):
            return

        def on_trial():
            st = check_running(vm, bundles, good.version)
            rec = st["record"] or {}
            # the image the build installed has no digest on record: PreviousSha256= may be
            # empty
            want = {"Current": good.version, "Sha256": good.sha256, "Trial": "yes",
                    "Previous": bundles.base_version,
                    "PreviousSha256": (bundles.base_sha256, "")}
            wrong = {k: rec.get(k) for k, v in want.items()
                     if rec.get(k) not in (v if isinstance(v, tuple) else (v,))}
            if wrong:
                raise AssertionError(f"the record has {wrong}, expected {want}:\n"
                                     f"{st['record_text']}")
            left = vm.check(f"ls -a {VAR_LIB}/incoming")
            if good.stem in left:
                raise AssertionError(f"the installed bundle is still in incoming/:\n{left}")
            log_block(f"update 1: {U.GAME} pid {st['pid']} runs {st['running']}, record:",
                      st["record_text"])
        step(tap, vm, "update 1: the game server runs the new version (marker) on trial; "
             "record and `current` agree; the bundle left incoming/", on_trial)

        def status_trial():
            js, e = U.update_status(vm)
            if e is None:
                raise AssertionError(f"no {U.IMAGE} in `vigilctl update status --json`: {js}")
            if U.entry_current(e) != good.version or not U.entry_trial(e):
                raise AssertionError(f"expected {good.version} on trial: {json.dumps(e)}")
            log(f"update 1: status: {json.dumps(e)}")
        step(tap, vm, "update 1: `vigilctl update status --json` shows the new version on "
             "trial", status_trial)

        def promotion():
            deadline = time.monotonic() + (TRIAL_HEALTHY + 120) * SLOW
            while True:
                rec = guest_record(vm)
                if rec and rec.get("Trial") != "yes":
                    break
                if time.monotonic() > deadline:
                    raise AssertionError(f"still on trial {vm.elapsed():.0f} s after qemu "
                                         f"started: {rec}")
                time.sleep(1)
            t = vm.elapsed()
            log(f"update 1: promoted {t:.1f} s after qemu started, {t - tl.started:.1f} s "
                f"after {U.GAME} started (TrialHealthySec={TRIAL_HEALTHY}s)")
            # healthy for TrialHealthySec= from when it started (1 s for the polling)
            if t - tl.started < TRIAL_HEALTHY - 1:
                raise AssertionError(f"promoted {t - tl.started:.1f} s after the server "
                                     f"started, before TrialHealthySec={TRIAL_HEALTHY}s")
            check_running(vm, bundles, good.version)
            js, e = U.update_status(vm)
            if e is None or U.entry_current(e) != good.version or U.entry_trial(e):
                raise AssertionError(f"status after the promotion: {json.dumps(js)}")
            vm.wait_game()
        step(tap, vm, f"update 1: promoted after TrialHealthySec={TRIAL_HEALTHY}s (Trial= "
             "cleared, status agrees); the game server still answers", promotion)
        step(tap, vm, "update 1: clean poweroff", lambda: vm.poweroff() and None)


# ---------------------------------------------------------------- 2: rolled back

def rolled_back(tap, adir, bundles):
    bad = bundles.make(crash=True)
    vm = VM(adir, name="update-rollback")
    bundles.stage(DataDisk(vm.data), bad)
    with vm:
        def boot():
            vm.wait_console(r"crash-looping test build")
            t_crash = vm.elapsed()
            vm.wait_game()
            log(f"update 2: the bad version first crashed {t_crash:.1f} s after qemu started; "
                f"the game server answers {vm.elapsed():.1f} s")
            return True
        if not step(tap, vm, "update 2: boots with a crash-looping bundle staged; it runs, "
                    "crashes, and the game server answers again", boot):
            return

        def old_version():
            st = check_running(vm, bundles, bundles.base_version)
            rec = st["record"] or {}
            problems = []
            if rec.get("Current") != bundles.base_version or rec.get("Trial") == "yes":
                problems.append(f"Current={rec.get('Current')} Trial={rec.get('Trial')}")
            if bad.sha256 not in U.rejected_digests(rec):
                problems.append(f"{bad.sha256} not in Rejected=")
            left = vm.check(f"ls -a {VAR_LIB}/images/{U.IMAGE} {VAR_LIB}/incoming")
            if bad.version in left:
                problems.append(f"the bad version's files are still there:\n{left}")
            if problems:
                raise AssertionError("; ".join(problems) + f"\nrecord:\n{st['record_text']}")
            log_block("update 2: record after the rollback:", st["record_text"])
        step(tap, vm, "update 2: rolled back: the old version runs, the record has its digest "
             "rejected, the bad file is gone", old_version)

        def status_rejected():
            js, e = U.update_status(vm)
            if e is None:
                raise AssertionError(f"no {U.IMAGE} in `vigilctl update status --json`: {js}")
            if U.entry_current(e) != bundles.base_version or U.entry_trial(e):
                raise AssertionError(f"expected {bundles.base_version}, no trial: {json.dumps(e)}")
            if bad.sha256 not in json.dumps(e):
                raise AssertionError(f"the digest {bad.sha256} is not listed as rejected: "
                                     f"{json.dumps(e)}")
            log(f"update 2: status: {json.dumps(e)}")
        step(tap, vm, "update 2: `vigilctl update status --json` lists the digest as rejected",
             status_rejected)
        step(tap, vm, "update 2: clean poweroff", lambda: vm.poweroff() and None)


# ---------------------------------------------------------------- 3: power cuts

def plan_quota(n):
    boot = max(1, n // 10)
    start = max(1, n // 5)
    apply = max(1, round(n * 0.35))
    return {"boot": boot, "apply": apply, "start": start, "trial": max(1, n - boot - start - apply)}


def choose_kind(rng, quota, staged, since_answer):
    """boot: before /var is mounted; apply: from /var mounted to shortly after the game server
    started (the install copy is there); start: around the server's start; trial: after the
    game server answered (it is checked first), up to past the promotion."""
    if since_answer >= 3:
        kind = "trial"
    else:
        kinds = [k for k, n in quota.items() if n > 0] or list(quota)
        if staged and "apply" in kinds and rng.random() < 0.7:
            kind = "apply"
        else:
            others = [k for k in kinds if k != "apply" or staged] or kinds
            kind = rng.choice([k for k in others for _ in range(max(1, quota[k]))])
    quota[kind] = max(0, quota[kind] - 1)
    return kind


def sleep_until(vm, t):
    while time.monotonic() < t:
        if not vm.alive():
            raise AssertionError("qemu exited before the cut")
        time.sleep(min(0.05, max(0.0, t - time.monotonic())))


def cut_boot(vm, kind, rng, tl, bundles):
    """Boots, waits for the kind's anchor and a random delay, kills qemu (SIGKILL). Returns
    (what was cut, the guest check when the game server answered first, or None)."""
    checked = None
    if kind == "boot":
        t0, delay, anchor = vm.t_start, rng.uniform(0.3, max(0.5, tl.mounted - 0.3)), "qemu start"
    elif kind == "apply":
        # from the units loaded to the bundle installed, its payload being larger than the one
        # scenario 1 timed
        seen = watch_console(vm, [LOADED], 180 * SLOW)
        t0 = vm.t_start + seen[LOADED]
        install = (tl.installed - tl.loaded) * bundles.known_size[bundles.last.version] / tl.size
        delay, anchor = rng.uniform(0, install + 0.5), "units loaded"
    elif kind == "start":
        vm.wait_console(STARTED)
        t0 = time.monotonic()
        # up to a crash-looping version's rollback (its start limit: 5 starts in 10 s)
        delay, anchor = rng.uniform(0, max(1, tl.game - tl.started) + 7), f"{U.GAME} started"
    else:
        vm.wait_game(timeout=150 * SLOW)
        t0 = time.monotonic()
        # half of them around the promotion (TrialHealthySec= after the start, about as long
        # after the first answer): its record, then the old versions deleted
        if rng.random() < 0.5:
            delay = rng.uniform(TRIAL_HEALTHY - 4, TRIAL_HEALTHY + 8)
        else:
            delay = rng.uniform(0, TRIAL_HEALTHY)
        anchor = "the game server answered"
        st = U.guest_state(vm, bundles.base_version)
        checked = (st, U.check_guest(st, bundles.known))
    sleep_until(vm, t0 + delay)
    vm.kill()
    late = time.monotonic() - (t0 + delay)
    what = (f"{delay:.1f} s after {anchor} ({t0 - vm.t_start:.1f} s), qemu killed "
            f"{vm.t_exit - vm.t_start:.1f} s after start"
            + (f" ({late:.1f} s late)" if late > 1 else ""))
    return what, checked


def orphans(fsck_out):
    """The inodes e2fsck cleared as orphans (open but unlinked at the cut): [(mode, size)]."""
    return [(m.group(1), int(m.group(2))) for m in re.finditer(
        r"Clearing orphaned inode \d+ \(uid=\d+, gid=\d+, mode=(\d+), size=(\d+)\)", fsck_out)]


def power_cuts(tap, adir, bundles, tl):
    seed = int(os.environ.get("VIGIL_VM_SEED") or time.time_ns() % 1000000)
    rng = random.Random(seed)
    quota = plan_quota(CUTS)
    log(f"power cuts: {CUTS} cuts, seed {seed} (VIGIL_VM_SEED={seed} repeats the plan), "
        f"kinds {quota}; {tl}")
    with open(os.path.join(adir, "appliance.json")) as f:
        src = os.path.join(adir, json.load(f)["data"])
    os.makedirs(WORK, exist_ok=True)
    data = os.path.join(WORK, "update-cuts-data.img")
    subprocess.run(["cp", "--sparse=always", src, data], check=True)
    disk = DataDisk(data)
    t_series = time.monotonic()
    consistent = {}     # cut -> its offline check passed
    confirmed = {}      # cut -> a later boot's game server answered on a consistent store
    pending = []
    since_answer = 0
    staged_count = 0
    installs_cut = 0
    failures = 0

    def answered(ok, what):
        nonlocal since_answer
        for c in pending:
            confirmed[c] = ok
        log(f"power cuts: {what}: cuts {', '.join(map(str, pending)) or '-'} "
            f"{'confirmed' if ok else 'NOT confirmed'}")
        pending.clear()
        since_answer = 0

    for i in range(1, CUTS + 1):
        if failures > 4:
            tap.ok(False, f"power cut {i}/{CUTS}: not run: too many failures before it")
            continue
        before = U.store_state(disk)
        rec = before["record"]
        staged = incoming_stems(before["incoming"])
        if not staged and not (rec and rec.get("Trial") == "yes"):
            b = bundles.make(crash=staged_count % 3 == 2, filler=FILLER)
            staged_count += 1
            bundles.stage(disk, b)
            before = U.store_state(disk)
            staged = [b.stem]
        kind = choose_kind(rng, quota, bool(staged), since_answer)
        log(f"power cut {i}/{CUTS}: {kind}; before: {U.summary(before)}")
        vm = VM(adir, name=f"update-cut{i:02d}", data=data, fresh_data=False)
        boot_error = None
        what, checked = "not cut (the boot failed)", None
        with vm:
            try:
                what, checked = cut_boot(vm, kind, rng, tl, bundles)
            except Exception as e:  # noqa: BLE001 - reported below, the series goes on
                boot_error = f"{type(e).__name__}: {e}"
                vm.failed = True
        if checked is not None:
            st, problems = checked
            ok = not problems
            tap.ok(ok, f"power cut {i}/{CUTS}: before it, the game server answers on "
                   f"{st['running']} and the guest's store is consistent",
                   None if ok else "\n".join(problems) + f"\nrecord:\n{st['record_text']}"
                   + f"console: {vm.console_log}")
            answered(ok, f"boot {i} answered on {st['running']}")
            if not ok:
                failures += 1
        elif boot_error:
            tap.ok(False, f"power cut {i}/{CUTS} ({kind}): the boot", boot_error)
            print(vm.diagnostics(), flush=True)
            answered(False, f"boot {i} failed")
            failures += 1
        else:
            since_answer += 1
        try:
            rc, fsck = disk.recover()
            problems, notes, after = U.check_offline(disk, bundles.known, bundles.base_version)
        except Exception as e:  # noqa: BLE001
            rc, fsck, problems, notes, after = None, "", [f"{type(e).__name__}: {e}"], [], None
        # an install begins when the units are loaded and ends with its log line: a cut in
        # between, with a bundle staged, hit the verification or the copy
        console = vm.console()
        if staged and re.search(LOADED, console) and not re.search(INSTALLED, console):
            installs_cut += 1
            notes.append("cut during the install (signature check or payload copy)")
        for mode, size in orphans(fsck):
            notes.append(f"e2fsck cleared an orphaned inode (mode {mode}, {size} bytes): a "
                         "file deleted while open, or an unfinished copy")
        if rc not in (None, 0, 1):
            notes.append(f"e2fsck -fy exit {rc}")
        consistent[i] = not problems
        pending.append(i)
        log(f"power cut {i}/{CUTS}: {what}; after: {U.summary(after) if after else '?'}"
            + "".join(f"\n#   {n}" for n in notes))
        tap.ok(not problems, f"power cut {i}/{CUTS} ({kind}): the store on the data disk is "
               "consistent (a complete image selected, the record agrees)",
               None if not problems else "\n".join(problems) + "\n" + fsck[-2000:]
               + f"\nconsole: {vm.console_log}")
        if problems:
            failures += 1

    # the last boot: the game server answers, the trial ends, a clean poweroff
    vm = VM(adir, name="update-cuts-final", data=data, fresh_data=False)
    with vm:
        def final():
            vm.wait_game()
            deadline = time.monotonic() + (TRIAL_HEALTHY + 120) * SLOW
            while True:
                rec = guest_record(vm)
                if not rec or rec.get("Trial") != "yes":
                    break
                if time.monotonic() > deadline:
                    raise AssertionError(f"still on trial: {rec}")
                time.sleep(2)
            vm.wait_game()
            st = U.guest_state(vm, bundles.base_version)
            problems = U.check_guest(st, bundles.known)
            if problems:
                raise AssertionError("; ".join(problems) + f"\nrecord:\n{st['record_text']}")
            log_block(f"power cuts: the last boot runs {st['running']}; record:",
                      st["record_text"])
            vm.poweroff()
            return True
        ok = step(tap, vm, "power cuts: a last boot: the game server answers, the trial ends, "
                  "the store is consistent, clean poweroff", final) is not None
        answered(ok, "the last boot")
    clean, report = fsck_clean(data)
    tap.ok(clean, "power cuts: the data disk is clean after the last poweroff",
           None if clean else report)
    survived = sum(1 for c in range(1, CUTS + 1) if consistent.get(c) and confirmed.get(c))
    took = time.monotonic() - t_series
    tap.diag(f"power cuts survived {survived}/{CUTS} ({installs_cut} during an install, "
             f"{staged_count} bundles staged, {took:.0f} s, seed {seed})")
    tap.ok(survived == CUTS, f"power cuts survived {survived}/{CUTS}")
    if survived == CUTS and os.environ.get("VIGIL_VM_KEEP") != "1":
        os.unlink(data)


def main(tap, adir):
    try:
        bundles = U.Bundles(adir, os.path.join(WORK, "update-bundles"))
    except Exception as e:  # noqa: BLE001
        tap.ok(False, "update: make bundles of the appliance's image", f"{type(e).__name__}: {e}")
        return
    tl = Timeline()
    promoted(tap, adir, bundles, tl)
    rolled_back(tap, adir, bundles)
    power_cuts(tap, adir, bundles, tl)
