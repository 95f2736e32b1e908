# Stand-in for OE-core's image.bbclass, the parts sota-stage-audit.bbclass
# meets: IMAGE_ROOTFS, IMAGE_CLASSES inherited with inherit_defer,
# do_rootfs [fakeroot] after do_prepare_recipe_sysroot, do_image after
# do_rootfs, no packaging tasks. do_rootfs copies TEST_ROOTFS_SOURCE (a tree
# the test staged and planted) instead of installing packages.
IMAGE_ROOTFS = "${WORKDIR}/rootfs"
IMAGE_CLASSES ??= ""
IMGCLASSES = "${IMAGE_CLASSES}"
inherit_defer ${IMGCLASSES}

TEST_ROOTFS_SOURCE ??= ""

deltask do_configure
deltask do_compile
deltask do_install
deltask do_populate_sysroot
deltask do_package
deltask do_package_write_ipk

# Re-made on every run, like a rootfs after any package change.
do_rootfs[nostamp] = "1"
fakeroot do_rootfs() {
    rm -rf ${IMAGE_ROOTFS}
    mkdir -p ${IMAGE_ROOTFS}
    cp -a ${TEST_ROOTFS_SOURCE}/. ${IMAGE_ROOTFS}/
}
addtask rootfs after do_prepare_recipe_sysroot

fakeroot do_image() {
    tar -C ${IMAGE_ROOTFS} -cf ${WORKDIR}/${PN}.rootfs.tar .
}
addtask image after do_rootfs before do_build

# Image types, as OE-core's image.bbclass adds them: do_image_<type>
# (dashes and dots as underscores) after do_image, before
# do_image_complete; a type's conversions (".gz") are made by its task.
# The types the tests use: ext4 (mkfs.ext4 -d), and meta-updater's
# ostreecommit (an OSTree archive repository, the commit's id in
# ${WORKDIR}/ostree_manifest) and ostreepush (records that it ran).
IMAGE_FSTYPES ??= ""
CONVERSIONTYPES = "gz xz zst bz2"
IMGDEPLOYDIR = "${WORKDIR}/deploy-images"
IMAGE_NAME = "${PN}"
OSTREE_REPO ??= "${TOPDIR}/ostree_repo"
OSTREE_BRANCHNAME ??= "test-branch"
IMAGE_TYPEDEP:ostreepush = "ostreecommit"
IMAGE_TYPEDEP:garagesign = "ostreepush"

python () {
    seen = set()
    todo = (d.getVar("IMAGE_FSTYPES") or "").split()
    while todo:
        t = todo.pop(0)
        base = t.split(".")[0]
        if base in seen:
            continue
        seen.add(base)
        after = ["do_image"] + ["do_image_%s" % dep for dep in (d.getVar("IMAGE_TYPEDEP:%s" % base) or "").split()]
        todo.extend((d.getVar("IMAGE_TYPEDEP:%s" % base) or "").split())
        bb.build.addtask("do_image_%s" % base.replace("-", "_"), "do_image_complete", " ".join(after), d)
}

# TEST_IMAGE_EXTRA: a file the tests add to the image files only (as an
# image post-process command might), not to the root file system.
TEST_IMAGE_EXTRA ??= ""
image_tree() {
    rm -rf ${WORKDIR}/image-tree
    cp -a ${IMAGE_ROOTFS} ${WORKDIR}/image-tree
    if [ -n "${TEST_IMAGE_EXTRA}" ]; then
        cp ${TEST_IMAGE_EXTRA} ${WORKDIR}/image-tree/etc/
    fi
}
do_image_ext4() {
    image_tree
    mkdir -p ${IMGDEPLOYDIR}
    mkfs.ext4 -q -F -d ${WORKDIR}/image-tree ${IMGDEPLOYDIR}/${IMAGE_NAME}.rootfs.ext4 16M
    for t in ${IMAGE_FSTYPES}; do
        case "$t" in ext4.gz) gzip -k -f ${IMGDEPLOYDIR}/${IMAGE_NAME}.rootfs.ext4 ;; esac
    done
}
do_image_ostreecommit[lockfiles] += "${OSTREE_REPO}/ostree.lock"
do_image_ostreecommit() {
    image_tree
    if [ ! -d ${OSTREE_REPO}/objects ]; then
        ostree --repo=${OSTREE_REPO} init --mode=archive-z2
    fi
    ostree --repo=${OSTREE_REPO} commit --tree=dir=${WORKDIR}/image-tree \
        --branch=${OSTREE_BRANCHNAME} --subject=test > ${WORKDIR}/ostree_manifest
}
do_image_ostreepush[lockfiles] += "${OSTREE_REPO}/ostree.lock"
do_image_ostreepush() {
    echo pushed > ${WORKDIR}/ostree-pushed
}
do_image_complete() {
    :
}
addtask image_complete after do_image before do_build
