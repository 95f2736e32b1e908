# Opt-in: with DISTRO_FEATURES:append = " sota-stage" meta-updater's aktualizr-shared-prov
# stages with sota-stage (aktualizr-shared-prov-sota-stage.inc); without it this
# append changes nothing, so adding the layer alone changes no signature of
# meta-updater's recipes (Yocto Project Compatible).
require ${@bb.utils.contains('DISTRO_FEATURES', 'sota-stage', 'aktualizr-shared-prov-sota-stage.inc', '', d)}
