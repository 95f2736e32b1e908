# meta-updater's device-credential provisioning, staged by sota-stage: the
# fragment, and when SOTA_PACKED_CREDENTIALS is set the server URL
# (/var/sota/import/gateway.url), its CA (root.crt) and the pinned root.json,
# so a device needs only its own certificate and key.
inherit sota-stage

SOTA_STAGE_METHOD = "device-cred"
SOTA_STAGE_HARDWARE_ID = ""
DEPENDS:remove = "aktualizr"

do_install() {
    if [ "${SOTA_STAGE_HAVE_ARCHIVE}" = 1 ]; then
        sota_stage_device ${D}
    else
        sota_stage_fragment ${D}
    fi
}

FILES:${PN} += "${nonarch_libdir}/sota/conf.d/20-sota-device-cred.toml ${localstatedir}/sota"
