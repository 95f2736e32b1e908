"""Copies MIB MiB of real files from /usr/share and /usr/lib into DEST, in
a fixed order, for the audit benches (bench-audit.sh, bench-audit-repos.sh):

    python3 scripts/bench/copy-tree.py DEST MIB PLAIN MAX_FILE_MIB [--report]

PLAIN=1 leaves out every file that starts like a gzip or zip; a file over
MAX_FILE_MIB MiB, or one that would pass the budget, is left out;
--report prints the size copied.
"""
import os, shutil, sys

dest, mib, plain = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
max_file = int(sys.argv[4]) * 1024 * 1024
report = sys.argv[5:] == ["--report"]
budget = mib * 1024 * 1024
total = 0
for top in ("/usr/share", "/usr/lib"):
    for root, dirs, files in os.walk(top):
        dirs.sort()
        for name in sorted(files):
            src = os.path.join(root, name)
            if os.path.islink(src) or not os.path.isfile(src):
                continue
            size = os.path.getsize(src)
            if plain:
                try:
                    head = open(src, "rb").read(4)
                except OSError:
                    continue
                if head.startswith(b"\x1f\x8b") or head.startswith(b"PK\x03\x04"):
                    continue
            if size > max_file or total + size > budget:
                continue
            out = os.path.join(dest, os.path.relpath(src, "/"))
            os.makedirs(os.path.dirname(out), exist_ok=True)
            try:
                shutil.copyfile(src, out)
            except OSError:
                continue
            total += size
        if total >= budget * 0.999:
            break
if report:
    print("tree: %d MiB in %s" % (total // (1024 * 1024), dest))
