# meta-updater's hardware ID fragment, rendered by sota-stage: the ID is
# checked (letters, digits, `.`, `_`, `-`) and written as a quoted string,
# which aktualizr reads as intended.
inherit sota-stage

SOTA_STAGE_HARDWARE_ID = "${SOTA_HARDWARE_ID}"
# Needs no archive.
SOTA_STAGE_ARCHIVE_TASKS = ""

do_install() {
    install -d ${D}${nonarch_libdir}/sota/conf.d
    sota_stage_hardware_id ${D}
}

# meta-updater lists ${libdir}/sota/conf.d, which is not where aktualizr
# looks when libdir is not /usr/lib.
FILES:${PN} += "${nonarch_libdir}/sota/conf.d"
