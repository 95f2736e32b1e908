SUMMARY = "Aktualizr hwid configuration (stand-in of meta-updater's)"
LICENSE = "MPL-2.0"
PACKAGE_ARCH = "${MACHINE_ARCH}"
SRC_URI = ""

do_install() {
    install -m 0700 -d ${D}${libdir}/sota/conf.d
    if [ -n "${SOTA_HARDWARE_ID}" ]; then
        printf "[provision]\nprimary_ecu_hardware_id = ${SOTA_HARDWARE_ID}\n" > ${D}${libdir}/sota/conf.d/40-hardware-id.toml
    fi
}

FILES:${PN} = " \
                ${libdir}/sota/conf.d \
                ${libdir}/sota/conf.d/40-hardware-id.toml \
                "
