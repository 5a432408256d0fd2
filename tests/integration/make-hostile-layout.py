#!/usr/bin/env python3
"""Writes an OCI image layout (tag v1) whose one layer tries to reach OUTSIDE, a directory
that is not in the image, for tests/integration/test-image-build.sh.

usage: make-hostile-layout.py LAYOUT OUTSIDE CASE

CASE is one of
  paths      entries named ../../..OUTSIDE/dotdot and /OUTSIDE/absolute; symlinks out of the
             root (absolute and ../../..) with a file written through each; whiteouts of
             ../../..OUTSIDE/victim and, through a symlink, of OUTSIDE/victim-link
  hardlink   a hard link to OUTSIDE/victim-hard, then a file of the same name
  dirlinks   /etc, /tmp, /usr and /home as symlinks to OUTSIDE: where image/build writes the
             image's passwd, mount points, homes, packages and Directory= overlay
"""

import gzip
import hashlib
import io
import json
import os
import sys
import tarfile


def entries(case, outside):
    up = "../" * 24 + outside.lstrip("/")
    if case == "paths":
        return [("etc", "dir", ""), ("etc/ok", "file", ""),
                (up + "/dotdot", "file", ""), (outside + "/absolute", "file", ""),
                ("abslink", "symlink", outside), ("abslink/through-abslink", "file", ""),
                ("rellink", "symlink", up), ("rellink/through-rellink", "file", ""),
                ("etc/" + up + "/.wh.victim", "file", ""),
                ("abslink/.wh.victim-link", "file", "")]
    if case == "hardlink":
        return [("hardlink", "hardlink", outside + "/victim-hard"), ("hardlink", "file", "")]
    if case == "dirlinks":
        return [(d, "symlink", outside) for d in ("etc", "tmp", "usr", "home")]
    raise SystemExit(f"unknown case {case}")


def main(layout, outside, case):
    os.makedirs(f"{layout}/blobs/sha256", exist_ok=True)

    def blob(data):
        d = hashlib.sha256(data).hexdigest()
        with open(f"{layout}/blobs/sha256/{d}", "wb") as f:
            f.write(data)
        return "sha256:" + d, len(data)

    raw = io.BytesIO()
    types = {"dir": tarfile.DIRTYPE, "file": tarfile.REGTYPE, "symlink": tarfile.SYMTYPE,
             "hardlink": tarfile.LNKTYPE}
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, link in entries(case, outside):
            ti = tarfile.TarInfo(name)
            ti.type = types[kind]
            ti.linkname = link
            data = b"written from the image\n" if kind == "file" else b""
            ti.size = len(data)
            ti.mode = 0o755 if kind == "dir" else 0o644
            t.addfile(ti, io.BytesIO(data))
    layer = raw.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    layer_digest, layer_size = blob(gzip.compress(layer))
    config_digest, config_size = blob(json.dumps({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode())
    manifest_digest, manifest_size = blob(json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer_digest, "size": layer_size}]}).encode())
    with open(f"{layout}/index.json", "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}, f)
    with open(f"{layout}/oci-layout", "w") as f:
        f.write('{"imageLayoutVersion": "1.0.0"}')


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
