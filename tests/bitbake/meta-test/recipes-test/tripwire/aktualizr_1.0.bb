SUMMARY = "Tripwire: meta-updater's recipes depend on aktualizr; with the .bbappends they must not"
LICENSE = "MIT"
do_install() {
    bbfatal "aktualizr was built: a .bbappend of meta-layer-snippets left DEPENDS on it"
}
