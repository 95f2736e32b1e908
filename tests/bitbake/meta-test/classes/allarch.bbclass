# Stand-in for OE-core's allarch.bbclass.
PACKAGE_ARCH = "all"
