SUMMARY = "Aktualizr configuration for sota-device-cred-hsm (stand-in of meta-updater's)"
LICENSE = "MPL-2.0"
inherit allarch
DEPENDS = "aktualizr"
SRC_URI = ""

do_install() {
    install -m 0700 -d ${D}${libdir}/sota/conf.d
    echo "# meta-updater's sota-device-cred-hsm.toml" > ${D}${libdir}/sota/conf.d/20-sota-device-cred-hsm.toml
}

FILES:${PN} = " \
                ${libdir}/sota/conf.d \
                ${libdir}/sota/conf.d/20-sota-device-cred-hsm.toml \
                "
