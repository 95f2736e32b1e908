# Stand-in for OE-core's native.bbclass: a build-host recipe, staged into the
# shared native sysroot and never packaged.
CLASSOVERRIDE = "class-native"
PACKAGE_ARCH = "${BUILD_ARCH}"
libdir = "${exec_prefix}/lib"
deltask do_package
deltask do_package_write_ipk
