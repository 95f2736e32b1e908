SUMMARY = "An image whose root file system is TEST_ROOTFS_SOURCE"
LICENSE = "MIT"

inherit image
