# meta-updater's shared provisioning credentials, staged by sota-stage: the
# device zip holds exactly autoprov.url and autoprov_credentials.p12 (not the
# whole archive), reproducibly, and root.json is pinned under
# /var/sota/import/repo. A bad archive fails do_sota_check with the tool's
# message instead of a bbwarn and an image that cannot provision.
inherit sota-stage

SOTA_STAGE_METHOD = "shared-cred"
# allarch: the hardware ID is aktualizr-hwid's.
SOTA_STAGE_HARDWARE_ID = ""
# No zip-native needed.
DEPENDS:remove = "zip-native"
# The archive is read by sota-stage, by path: not a SRC_URI entry (meta-updater's
# credentials.inc), which would put its path into the fetch signatures and a
# copy of it into WORKDIR.
SRC_URI:remove = "file://${SOTA_PACKED_CREDENTIALS}"
SRC_URI[vardepsexclude] += "SOTA_PACKED_CREDENTIALS"

do_install() {
    if [ "${SOTA_STAGE_HAVE_ARCHIVE}" = 1 ]; then
        sota_stage_device ${D}
        # The fragment is aktualizr-shared-prov's.
        rm ${D}${nonarch_libdir}/sota/conf.d/20-sota-shared-cred.toml
        rmdir ${D}${nonarch_libdir}/sota/conf.d ${D}${nonarch_libdir}/sota ${D}${nonarch_libdir} ${D}${exec_prefix}
    fi
}

FILES:${PN} += "${localstatedir}/sota"

# Secret (the shared provisioning key): no sstate archive of any output.
SSTATE_SKIP_CREATION:task-populate-sysroot = "1"
SSTATE_SKIP_CREATION:task-package = "1"
SSTATE_SKIP_CREATION:task-packagedata = "1"
SSTATE_SKIP_CREATION:task-package-write-ipk = "1"
SSTATE_SKIP_CREATION:task-package-write-deb = "1"
SSTATE_SKIP_CREATION:task-package-write-rpm = "1"
