# nooelint: oelint.file.underscores - no upstream version: PV is the default 1.0
SUMMARY = "OTA credentials and aktualizr config for the device, staged by sota-stage"
DESCRIPTION = "The device's share of SOTA_PACKED_CREDENTIALS for SOTA_CLIENT_PROV \
(shared-cred: /var/sota/sota_provisioning_credentials.zip; device-cred and \
device-cred-hsm: /var/sota/import/gateway.url and root.crt), the aktualizr \
config fragment for the method, the hardware ID fragment and the pinned \
initial Uptane root. Host-only secrets never reach this package."
HOMEPAGE = "https://github.com/uptane/aktualizr"
SECTION = "base"
# The package holds your OTA server's credentials, not third-party code.
LICENSE = "CLOSED"

# No sources: sota-stage reads SOTA_PACKED_CREDENTIALS by path (never a
# SRC_URI entry, which would put the path into the task signatures).
SRC_URI = ""

inherit sota-stage

# The hardware ID defaults to ${MACHINE}.
PACKAGE_ARCH = "${MACHINE_ARCH}"
INHIBIT_DEFAULT_DEPS = "1"

do_configure[noexec] = "1"
do_compile[noexec] = "1"

do_install() {
    sota_stage_device ${D}
}

# aktualizr reads /usr/lib/sota/conf.d whatever libdir is: nonarch_libdir.
FILES:${PN} += "${localstatedir}/sota ${nonarch_libdir}/sota"

# The same files as meta-updater's provisioning packages: with meta-updater,
# use its recipes (this layer's .bbappends make them stage with sota-stage).
RCONFLICTS:${PN} = "aktualizr-shared-prov aktualizr-shared-prov-creds aktualizr-device-prov aktualizr-device-prov-hsm aktualizr-hwid"

# Secrets (the shared p12 in the device zip, a PKCS#11 PIN in the HSM
# fragment): keep every output of this recipe out of the sstate cache, which
# is often shared across teams and machines. The tasks still run and their
# output still reaches the image; it is only never archived for reuse.
SSTATE_SKIP_CREATION:task-populate-sysroot = "1"
SSTATE_SKIP_CREATION:task-package = "1"
SSTATE_SKIP_CREATION:task-packagedata = "1"
SSTATE_SKIP_CREATION:task-package-write-ipk = "1"
SSTATE_SKIP_CREATION:task-package-write-deb = "1"
SSTATE_SKIP_CREATION:task-package-write-rpm = "1"
# Nothing here belongs in a sysroot (the PIN fragment would land in one).
SYSROOT_DIRS = ""

python __anonymous() {
    if not d.getVar("SOTA_PACKED_CREDENTIALS"):
        raise bb.parse.SkipRecipe("SOTA_PACKED_CREDENTIALS is not set (the path of your OTA server's credentials.zip)")
}
