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
