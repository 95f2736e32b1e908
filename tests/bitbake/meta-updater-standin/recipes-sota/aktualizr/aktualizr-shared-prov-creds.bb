SUMMARY = "Credentials for shared provisioning (stand-in of meta-updater's)"
LICENSE = "MPL-2.0"
inherit allarch
DEPENDS = "zip-native"
SRC_URI = ""
require credentials.inc

do_install() {
    install -m 0700 -d ${D}${localstatedir}/sota
    echo "meta-updater's zip" > ${D}${localstatedir}/sota/sota_provisioning_credentials.zip
}

FILES:${PN} = " \
                ${localstatedir}/sota/sota_provisioning_credentials.zip \
                "
