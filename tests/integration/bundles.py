"""Images and signed update bundles for integration tests: minisign key pairs, small
squashfs roots running a static busybox, bundles made by image/mkbundle, and the ways to
spoil one (a flipped byte, a truncated payload, a hand-written manifest signed as is)."""

import hashlib
import os
import shutil
import subprocess
import tempfile

SOURCE = os.path.normpath(os.path.join(os.path.dirname(__file__), "../.."))
MKBUNDLE = os.path.join(SOURCE, "image/mkbundle")
BUSYBOX = shutil.which("busybox") or "/bin/busybox"
APPLETS = ["sh", "cat", "echo", "sleep", "tail", "true", "false"]

# What /bin/app does in each kind of image (it is the services' ExecStart=), and what
# /bin/health (a HealthCmd=) exits with. Both append the image's version to a file in /out.
APP = {
    "good": "echo \"$(cat /etc/version)\" >> /out/starts\nexec sleep 1000\n",
    "crash": "echo \"$(cat /etc/version)\" >> /out/starts\nexit 1\n",
    "unhealthy": "echo \"$(cat /etc/version)\" >> /out/starts\nexec sleep 1000\n",
}
HEALTH = {"good": 0, "crash": 0, "unhealthy": 1}


def missing_tools():
    """The tools these helpers need that are not installed."""
    return [t for t in ("minisign", "mksquashfs") if not shutil.which(t)] + \
        ([] if os.path.exists(BUSYBOX) else ["busybox"])


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def flip_byte(path, offset):
    """Inverts the lowest bit of the byte at offset (negative: from the end)."""
    with open(path, "r+b") as f:
        size = f.seek(0, os.SEEK_END)
        pos = offset if offset >= 0 else size + offset
        f.seek(pos)
        b = f.read(1)
        f.seek(pos)
        f.write(bytes([b[0] ^ 1]))


def flip_base64(path, line, column):
    """Replaces one base64 character of a line of a .minisig with another valid one."""
    with open(path) as f:
        lines = f.read().split("\n")
    c = lines[line][column]
    lines[line] = lines[line][:column] + ("B" if c != "B" else "C") + lines[line][column + 1:]
    with open(path, "w") as f:
        f.write("\n".join(lines))


class Bundles:
    """A temporary directory with two key pairs (`release`, trusted; `rogue`, not), squashfs
    images made on demand and cached, and bundles."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="vigil-bundles.")
        self.n = 0
        self.images = {}
        self.keys = {}
        for name in ("release", "rogue"):
            pub = os.path.join(self.dir, name + ".pub")
            key = os.path.join(self.dir, name + ".key")
            subprocess.run(["minisign", "-G", "-W", "-p", pub, "-s", key], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.keys[name] = (pub, key)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def trust(self, config_dir, name="release"):
        """Installs a public key in CONFIG_DIR/trusted/."""
        d = os.path.join(config_dir, "trusted")
        os.makedirs(d, exist_ok=True)
        shutil.copy(self.keys[name][0], os.path.join(d, name + ".pub"))

    def image(self, kind, version, padding=0):
        """A squashfs whose /etc/version is VERSION and whose /bin/app and /bin/health
        behave as KIND says; padding: bytes of random data added (to make it large)."""
        k = (kind, version, padding)
        if k in self.images:
            return self.images[k]
        root = tempfile.mkdtemp(prefix="root.", dir=self.dir)
        os.chmod(root, 0o755)  # the image's / (mkdtemp makes it 0700)
        for d in ["bin", "proc", "dev", "sys", "tmp", "run", "etc", "out"]:
            os.makedirs(os.path.join(root, d))
        shutil.copy(BUSYBOX, os.path.join(root, "bin/busybox"))
        for a in APPLETS:
            os.symlink("busybox", os.path.join(root, "bin", a))
        with open(os.path.join(root, "etc/passwd"), "w") as f:
            f.write("root:x:0:0:root:/:/bin/sh\n")
        with open(os.path.join(root, "etc/group"), "w") as f:
            f.write("root:x:0:\n")
        with open(os.path.join(root, "etc/version"), "w") as f:
            f.write(version + "\n")
        for name, text in (("app", APP[kind]),
                           ("health", "echo \"$(cat /etc/version)\" >> /out/health\n"
                                      f"exit {HEALTH[kind]}\n")):
            p = os.path.join(root, "bin", name)
            with open(p, "w") as f:
                f.write("#!/bin/sh\n" + text)
            os.chmod(p, 0o755)
        if padding:
            with open(os.path.join(root, "padding"), "wb") as f:
                f.write(os.urandom(padding))
        out = os.path.join(self.dir, f"{kind}-{version}-{padding}.squashfs")
        subprocess.run(["mksquashfs", root, out, "-quiet", "-noappend", "-all-root",
                        "-no-progress"], check=True, stdout=subprocess.DEVNULL)
        shutil.rmtree(root)
        self.images[k] = out
        return out

    def _out(self):
        self.n += 1
        d = os.path.join(self.dir, f"b{self.n}")
        os.makedirs(d)
        return d

    def bundle(self, name, version, kind="good", key="release", padding=0):
        """A fresh bundle (in a directory of its own, free to spoil); returns DIR/NAME-VERSION,
        the path of its files without their suffixes."""
        out = self._out()
        r = subprocess.run([MKBUNDLE, "--key", self.keys[key][1], "--name", name, "--version",
                            version, "--out", out, self.image(kind, version, padding)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"mkbundle {name} {version}: {r.stderr}")
        return os.path.join(out, f"{name}-{version}")

    def sign(self, manifest, key="release"):
        """Signs a (hand-written) manifest as mkbundle would: MANIFEST.minisig."""
        subprocess.run(["minisign", "-S", "-H", "-s", self.keys[key][1], "-m", manifest,
                        "-x", manifest + ".minisig", "-t", "test"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def custom(self, stem, manifest_text, payload_of=None, key="release"):
        """A bundle named STEM with this manifest text, signed, and the payload of
        another bundle (a stem path) or none."""
        out = self._out()
        path = os.path.join(out, stem)
        with open(path + ".manifest", "w") as f:
            f.write(manifest_text)
        self.sign(path + ".manifest", key)
        if payload_of:
            shutil.copy(payload_of + ".squashfs", path + ".squashfs")
        return path

    @staticmethod
    def manifest(stem_path):
        """The manifest of a bundle as a dict."""
        d = {}
        with open(stem_path + ".manifest") as f:
            for line in f:
                if "=" in line:
                    k, v = line.strip().split("=", 1)
                    d[k] = v
        return d

    @staticmethod
    def files(stem_path):
        """The files of a bundle that exist (a partial bundle has fewer)."""
        return [stem_path + s for s in (".squashfs", ".manifest", ".manifest.minisig")
                if os.path.lexists(stem_path + s)]

    @staticmethod
    def copy_to(stem_path, directory, stem=None):
        """Copies the bundle's files into directory (symbolic links stay links), named
        STEM.* (default: its own stem). Returns the new stem path."""
        base = os.path.basename(stem_path)
        dst = os.path.join(directory, stem or base)
        for f in Bundles.files(stem_path):
            target = dst + f[len(stem_path):]
            if os.path.islink(f):
                os.symlink(os.readlink(f), target)
            else:
                shutil.copyfile(f, target)
        return dst
