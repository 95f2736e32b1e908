SUMMARY = "Tripwire: meta-updater's credentials recipe depends on zip-native; with the .bbappend it must not"
LICENSE = "MIT"
inherit native
do_install() {
    bbfatal "zip-native was built: a .bbappend of meta-layer-snippets left DEPENDS on it"
}
