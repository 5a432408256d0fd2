#!/usr/bin/env python3
"""The boot bench's systemd image stays what tests/bench/README.md says it is, without
building it (debootstrap) or booting it (qemu):
- every file tests/bench/boot-systemd/build copies from the repository exists;
- its teeworlds.service runs the same game server as the gameserver appliance's: every
  [Unit], [Service] and [Install] line of vigil's unit but Policy= is in it, in the same
  section;
- what vigil takes from Policy=gameserver is there as systemd directives: every line of
  policies/gameserver.policy that systemd knows, and CPUWeight= for the high CPU tier;
- in place of [Container], systemd's confinement directives (read-only root, namespaces,
  private /tmp and /dev, the state directory of the volume).

usage: test-bench-systemd.py SOURCE_ROOT   (TAP)
"""

import os
import re
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else \
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(ROOT, "tests/bench/boot-systemd")
APP = os.path.join(ROOT, "image/appliances/gameserver")
n = 0
failed = 0


def ok(cond, desc, diag=()):
    global n, failed
    n += 1
    print(f"{'ok' if cond else 'not ok'} {n} - {desc}")
    if not cond:
        failed = 1
        for d in diag:
            print(f"#   {d}")


def lines(path):
    """(section, 'KEY=VALUE') of a unit or policy file, continuations joined."""
    out = []
    section = None
    with open(path) as f:
        text = re.sub(r"\\\n\s*", " ", f.read())
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line
            continue
        key, _, value = line.partition("=")
        out.append((section, f"{key.strip()}={value.strip()}"))
    return out


with open(os.path.join(BENCH, "build")) as f:
    script = f.read()
copied = re.findall(r"\$(APP|HERE)(/[^\"\s]*)", script)
missing = [f"${v}{p}" for v, p in copied
           if not os.path.exists(os.path.join(APP if v == "APP" else BENCH, p.lstrip("/")))]
ok(copied and not missing, "every file boot-systemd/build copies from the repository exists",
   missing)

vigil = lines(os.path.join(APP, "units/teeworlds.service"))
systemd = lines(os.path.join(BENCH, "teeworlds.service"))
want = [(s, kv) for s, kv in vigil
        if s in ("[Unit]", "[Service]", "[Install]") and not kv.startswith("Policy=")]
absent = [f"{s} {kv}" for s, kv in want if (s, kv) not in systemd]
ok(want and not absent, "the systemd teeworlds.service runs vigil's game server, line for line",
   absent)
ok(not [kv for s, kv in systemd if s == "[Container]" or kv.startswith("Policy=")],
   "the systemd teeworlds.service has nothing only vigil knows (Policy=, [Container])")

policy = [kv for s, kv in lines(os.path.join(ROOT, "policies/gameserver.policy"))
          if s == "[Service]" and not kv.startswith("CPU")]
absent = [kv for kv in policy if ("[Service]", kv) not in systemd]
ok(policy and not absent and ("[Service]", "CPUWeight=1000") in systemd,
   "Policy=gameserver's settings are in it as systemd directives", absent)

container = ["ProtectSystem=strict", "PrivateMounts=yes", "PrivateIPC=yes",
             "ProtectHostname=yes", "PrivateUsers=yes", "PrivateTmp=yes", "PrivateDevices=yes",
             "ProtectProc=invisible", "StateDirectory=teeworlds"]
absent = [kv for kv in container if ("[Service]", kv) not in systemd]
ok(not absent, "[Container]'s confinement is in it as systemd directives", absent)

print(f"1..{n}")
sys.exit(failed)
