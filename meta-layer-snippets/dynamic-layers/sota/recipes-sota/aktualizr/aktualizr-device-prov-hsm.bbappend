# meta-updater's device-credential provisioning with an HSM, staged by
# sota-stage: the fragment with the [p11] settings (SOTA_HSM_*; the PIN read
# from SOTA_HSM_PIN_FILE, the fragment 0600), and when SOTA_PACKED_CREDENTIALS
# is set the server URL, its CA and the pinned root.json.
inherit sota-stage

SOTA_STAGE_METHOD = "device-cred-hsm"
SOTA_STAGE_HARDWARE_ID = ""
DEPENDS:remove = "aktualizr"

do_install() {
    if [ "${SOTA_STAGE_HAVE_ARCHIVE}" = 1 ]; then
        sota_stage_device ${D}
    else
        sota_stage_fragment ${D}
    fi
}

FILES:${PN} += "${nonarch_libdir}/sota/conf.d/20-sota-device-cred-hsm.toml ${localstatedir}/sota"

# The fragment holds the PKCS#11 PIN: no sstate archive of any output.
SSTATE_SKIP_CREATION:task-populate-sysroot = "1"
SSTATE_SKIP_CREATION:task-package = "1"
SSTATE_SKIP_CREATION:task-packagedata = "1"
SSTATE_SKIP_CREATION:task-package-write-ipk = "1"
SSTATE_SKIP_CREATION:task-package-write-deb = "1"
SSTATE_SKIP_CREATION:task-package-write-rpm = "1"
