# Stand-in for OE-core's base classes: OE-core's task names and order,
#   fetch -> unpack -> patch -> prepare_recipe_sysroot -> configure -> compile
#   -> install -> populate_sysroot / package -> package_write_ipk -> build
# logging functions like OE-core's logging.bbclass, and a stand-in for the
# sstate cache: an sstate task's output is copied to SSTATE_DIR unless
# SSTATE_SKIP_CREATION is "1" for it (with OE-core's task-<name> override),
# so a test can see what OE-core would archive.

LOGFIFO = "${T}/fifo.${@os.getpid()}"
bbplain() {
    if [ -p ${LOGFIFO} ]; then printf "%b\0" "bbplain $*" > ${LOGFIFO}; else echo "$*"; fi
}
bbnote() {
    if [ -p ${LOGFIFO} ]; then printf "%b\0" "bbnote $*" > ${LOGFIFO}; else echo "NOTE: $*"; fi
}
bbwarn() {
    if [ -p ${LOGFIFO} ]; then printf "%b\0" "bbwarn $*" > ${LOGFIFO}; else echo "WARNING: $*"; fi
}
bberror() {
    if [ -p ${LOGFIFO} ]; then printf "%b\0" "bberror $*" > ${LOGFIFO}; else echo "ERROR: $*"; fi
}
bbfatal() {
    if [ -p ${LOGFIFO} ]; then printf "%b\0" "bbfatal $*" > ${LOGFIFO}; else echo "ERROR: $*"; fi
    exit 1
}

def standin_file_checksums(d):
    """[file-checksums] for the file:// entries of SRC_URI, like OE-core's
    bb.fetch.get_checksum_file_list() does for local files."""
    out = []
    for uri in (d.getVar("SRC_URI") or "").split():
        if uri.startswith("file://"):
            path = uri[len("file://"):].split(";")[0]
            if not os.path.isabs(path):
                path = bb.utils.which(d.getVar("FILESPATH"), path) or path
            out.append("%s:True" % path)
    return " ".join(out)

def standin_sstate(d, task, outdir):
    """Archive a task's output as OE-core's sstate.bbclass would."""
    import shutil
    if d.getVar("SSTATE_SKIP_CREATION") == "1":
        bb.note("%s: SSTATE_SKIP_CREATION: no sstate archive" % task)
        return
    dest = os.path.join(d.getVar("SSTATE_DIR"), d.getVar("PN"), task)
    shutil.rmtree(dest, ignore_errors=True)
    if os.path.isdir(outdir):
        shutil.copytree(outdir, dest, symlinks=True)
    else:
        os.makedirs(dest)

do_fetch[dirs] = "${WORKDIR}"
do_fetch[file-checksums] = "${@standin_file_checksums(d)}"
python do_fetch() {
    import shutil
    for uri in (d.getVar("SRC_URI") or "").split():
        if not uri.startswith("file://"):
            bb.fatal("only file:// is supported here: %s" % uri)
        path = uri[len("file://"):].split(";")[0]
        if not os.path.isabs(path):
            path = bb.utils.which(d.getVar("FILESPATH"), path)
        shutil.copy(path, d.getVar("WORKDIR"))
}
addtask fetch

do_unpack() {
    :
}
addtask unpack after do_fetch

do_patch() {
    :
}
addtask patch after do_unpack

# DEPENDS are in the (here: shared) sysroots before this task ends.
do_prepare_recipe_sysroot[deptask] = "do_populate_sysroot"
do_prepare_recipe_sysroot() {
    :
}
addtask prepare_recipe_sysroot after do_patch

do_configure[dirs] = "${B}"
do_configure() {
    :
}
addtask configure after do_prepare_recipe_sysroot

do_compile[dirs] = "${B}"
do_compile() {
    :
}
addtask compile after do_configure

do_install[dirs] = "${B}"
do_install[cleandirs] = "${D}"
do_install() {
    :
}
addtask install after do_compile

python do_populate_sysroot() {
    import shutil
    image = d.getVar("D")
    staged = os.path.join(d.getVar("WORKDIR"), "sysroot-destdir")
    shutil.rmtree(staged, ignore_errors=True)
    os.makedirs(staged)
    if d.getVar("CLASSOVERRIDE") == "class-native":
        shutil.copytree(image, staged, symlinks=True, dirs_exist_ok=True)
        sysroot = d.getVar("STAGING_DIR_NATIVE")
    else:
        for sub in (d.getVar("SYSROOT_DIRS") or "").split():
            src = image + sub
            if os.path.isdir(src):
                shutil.copytree(src, staged + sub, symlinks=True, dirs_exist_ok=True)
        sysroot = d.getVar("STAGING_DIR_TARGET")
    shutil.copytree(staged, sysroot, symlinks=True, dirs_exist_ok=True)
    standin_sstate(d, "do_populate_sysroot", staged)
}
addtask populate_sysroot after do_install

# One package per recipe, ${PN}, from FILES:${PN}. A file in ${D} that FILES
# does not ship is an error, like OE-core's installed-vs-shipped QA check.
python do_package() {
    import fnmatch, shutil
    image = d.getVar("D")
    pn = d.getVar("PN")
    dest = os.path.join(d.getVar("PKGDEST"), pn)
    shutil.rmtree(d.getVar("PKGDEST"), ignore_errors=True)
    os.makedirs(dest)
    patterns = (d.getVar("FILES:" + pn) or "").split()
    def shipped(path):
        return any(path == p or path.startswith(p.rstrip("/") + "/") or fnmatch.fnmatch(path, p)
                   for p in patterns)
    unshipped = []
    for root, dirs, files in os.walk(image):
        for name in files + [x for x in dirs if os.path.islink(os.path.join(root, x))]:
            full = os.path.join(root, name)
            rel = full[len(image):]
            if not shipped(rel):
                unshipped.append(rel)
                continue
            target = dest + rel
            parent = os.path.dirname(rel)
            # Folders keep their modes (/var/sota is 0700).
            for i in range(1, len(parent.split("/"))):
                part = "/".join(parent.split("/")[:i + 1])
                if not os.path.isdir(dest + part):
                    os.mkdir(dest + part)
                    shutil.copystat(image + part, dest + part)
            shutil.copy2(full, target, follow_symlinks=False)
    if unshipped:
        bb.fatal("QA Issue: %s: files installed but not shipped in any package: %s"
                 % (pn, " ".join(sorted(unshipped))))
    standin_sstate(d, "do_package", d.getVar("PKGDEST"))
}
addtask package after do_install

python do_package_write_ipk() {
    import tarfile
    pn = d.getVar("PN")
    outdir = os.path.join(d.getVar("WORKDIR"), "deploy-ipks", d.getVar("PACKAGE_ARCH"))
    os.makedirs(outdir, exist_ok=True)
    with tarfile.open(os.path.join(outdir, "%s.tar" % pn), "w") as tar:
        tar.add(os.path.join(d.getVar("PKGDEST"), pn), arcname=".")
    standin_sstate(d, "do_package_write_ipk", os.path.join(d.getVar("WORKDIR"), "deploy-ipks"))
}
addtask package_write_ipk after do_package

do_build[noexec] = "1"
addtask build after do_populate_sysroot do_package_write_ipk

python __anonymous() {
    # As OE-core does: target recipes install under fakeroot.
    if d.getVar("CLASSOVERRIDE") != "class-native":
        d.setVarFlag("do_install", "fakeroot", "1")
}
