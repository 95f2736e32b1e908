SUMMARY = "Stand-in for sota-stage-native: installs the binary cargo built for the tests"
LICENSE = "MIT | Apache-2.0"
PROVIDES = "sota-stage-native"

inherit native

# Set by the test in local.conf (CARGO_BIN_EXE_sota-stage).
SOTA_STAGE_TEST_BINARY ??= ""
do_install[file-checksums] += "${SOTA_STAGE_TEST_BINARY}:True"

do_install() {
    install -d ${D}${bindir}
    install -m 0755 ${SOTA_STAGE_TEST_BINARY} ${D}${bindir}/sota-stage
}
