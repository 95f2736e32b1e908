# nooelint: oelint.file.underscores - no upstream version: PV is the default 1.0
SUMMARY = "The host side of the OTA credentials, for garage-push and garage-sign"
DESCRIPTION = "Every entry of SOTA_PACKED_CREDENTIALS that a host tool reads \
(treehub.json, targets.pub, targets.sec, root.json, tufrepo.url, ...) and \
credentials.zip, a host-only archive without the device's shared \
provisioning key, staged into the native sysroot under \
${datadir}/sota-stage. Image recipes find them at \
${STAGING_DATADIR_NATIVE}/sota-stage after depending on this recipe's \
do_populate_sysroot (README.md)."
HOMEPAGE = "https://github.com/uptane/aktualizr"
SECTION = "devel"
# The files are your OTA server's credentials, not third-party code.
LICENSE = "CLOSED"

# No sources: sota-stage reads SOTA_PACKED_CREDENTIALS by path.
SRC_URI = ""

inherit sota-stage
inherit_defer native

# The host side: its tasks follow only the host entries of the archive.
SOTA_STAGE_SIDE = "host"
# Native output must not depend on the machine.
SOTA_STAGE_HARDWARE_ID = ""

do_configure[noexec] = "1"
do_compile[noexec] = "1"

do_install() {
    sota_stage_host ${D}${datadir}/sota-stage
}

# Secrets (targets.sec, treehub.json's OAuth2 secret, client_auth.p12):
# do_populate_sysroot is an sstate task, and a shared sstate cache or mirror
# would hand them to everyone who can read it. Rebuild them instead.
SSTATE_SKIP_CREATION:task-populate-sysroot = "1"

python __anonymous() {
    if not d.getVar("SOTA_PACKED_CREDENTIALS"):
        raise bb.parse.SkipRecipe("SOTA_PACKED_CREDENTIALS is not set (the path of your OTA server's credentials.zip)")
}
