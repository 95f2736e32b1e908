#!/usr/bin/env python3
"""Times `sota-stage inspect` on hostile archives built here, and reports
wall time and peak memory (GNU time's maximum resident set size) of each.

    scripts/limits/hostile-inspect.py [SOTA_STAGE]   # default target/release/sota-stage

The inputs sit at the intake limits (docs/inspect.md): a 16 MiB archive of
255 stored entries, a central directory of ~357,000 records, deflate bombs
with true and lying sizes, a server_ca.pem of ~7,500 certificates, JSON
entries at and past the value budget. Issue 10 asks each to finish in under
2 s and 64 MiB. Needs `openssl` and `/usr/bin/time`.
"""

import os
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib

MIB = 1024 * 1024


def raw_zip(entries):
    """Local headers, central directory, end record; (name, data, method, stored)."""
    out, central = bytearray(), bytearray()
    for name, data, method, stored in entries:
        offset, crc = len(out), zlib.crc32(data)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 33, crc,
                           len(stored), len(data), len(name), 0) + name + stored
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, (3 << 8) | 20, 20, 0,
                               method, 0, 33, crc, len(stored), len(data), len(name),
                               0, 0, 0, 0, 0o100644 << 16, offset) + name
    start = len(out)
    out += central
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries),
                       len(central), start, 0)
    return bytes(out)


def deflate(data):
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def build(dir):
    url = b"https://gw.example.test:443"
    cases = {}

    def put(name, data):
        path = os.path.join(dir, name)
        with open(path, "wb") as f:
            f.write(data)
        cases[name] = path

    put("max-entries.zip", raw_zip([(b"f%d" % i, d, 0, d)
                                    for i, d in ((i, os.urandom(60000)) for i in range(255))]))
    name = b"a"
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 33, 0, 0, 0, 1, 0) + name
    record = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, (3 << 8) | 20, 20, 0, 0, 0, 33,
                         0, 0, 0, 1, 0, 0, 0, 0, 0o100644 << 16, 0) + name
    central = record * ((16 * MIB - 200) // len(record))
    put("many-records.zip", local + central + struct.pack(
        "<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFE, 0xFFFE, len(central), len(local), 0))
    zeros = b"\0" * (4 * MIB)
    put("bomb.zip", raw_zip([(b"z%d" % i, zeros, 8, deflate(zeros)) for i in range(4)]))
    put("lying-bomb.zip", raw_zip([(b"root.json", b"\0", 8, deflate(b"\0" * (256 * MIB)))]))

    subprocess.run(["openssl", "req", "-x509", "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", os.path.join(dir, "k.pem"),
                    "-subj", "/CN=ca", "-days", "30", "-out", os.path.join(dir, "c.pem")],
                   check=True, capture_output=True)
    with open(os.path.join(dir, "c.pem"), "rb") as f:
        pem = f.read()
    path = os.path.join(dir, "many-certs.zip")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("autoprov.url", url)
        z.writestr("server_ca.pem", pem * ((4 * MIB - 100) // len(pem)))
    cases["many-certs.zip"] = path

    def root(elements):
        return ('{"signed":{"_type":"Root","version":1,"expires":"2030-01-01T00:00:00Z",'
                '"k":[' + ",".join(elements) + ']},"signatures":[]}').encode()

    for name, doc in [("json-at-budget.zip", root(['{"a":[]}'] * 33000)),
                      ("json-past-budget.zip", root(["[]"] * 1_300_000))]:
        path = os.path.join(dir, name)
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
            z.writestr("autoprov.url", url)
            z.writestr("root.json", doc)
            left = 16 * MIB - len(doc) - 4096
            for i in range(4):
                size = min(4 * MIB - 1000, left)
                if size > 0:
                    z.writestr("pad%d" % i, os.urandom(size))
                    left -= size
        cases[name] = path
    return cases


def main():
    tool = sys.argv[1] if len(sys.argv) > 1 else "target/release/sota-stage"
    with tempfile.TemporaryDirectory() as dir:
        for name, path in sorted(build(dir).items()):
            run = subprocess.run(["/usr/bin/time", "-f", "%e %M", tool, "inspect", path],
                                 capture_output=True, text=True)
            seconds, kib = run.stderr.strip().splitlines()[-1].split()
            print(f"{name:22} {float(seconds):5.2f} s  {int(kib) / 1024:6.1f} MiB  "
                  f"exit {run.returncode}")


if __name__ == "__main__":
    main()
