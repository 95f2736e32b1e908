# meta-updater's shared-credential config fragment, rendered by sota-stage in
# the dialect aktualizr parses (with the p12 password when one is set).
inherit sota-stage

SOTA_STAGE_METHOD = "shared-cred"
SOTA_STAGE_HARDWARE_ID = ""
# The fragment does not depend on the archive's content: no check task, no
# re-run when the archive changes.
SOTA_STAGE_ARCHIVE_TASKS = ""
# The fragment comes from sota-stage, not from aktualizr's sysroot.
DEPENDS:remove = "aktualizr"

do_install() {
    sota_stage_fragment ${D}
}

FILES:${PN} += "${nonarch_libdir}/sota/conf.d/20-sota-shared-cred.toml"

# Holds the p12 password when SOTA_P12_PASSWORD_FILE is set: no sstate archive.
SSTATE_SKIP_CREATION:task-populate-sysroot = "1"
SSTATE_SKIP_CREATION:task-package = "1"
SSTATE_SKIP_CREATION:task-packagedata = "1"
SSTATE_SKIP_CREATION:task-package-write-ipk = "1"
SSTATE_SKIP_CREATION:task-package-write-deb = "1"
SSTATE_SKIP_CREATION:task-package-write-rpm = "1"
