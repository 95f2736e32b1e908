# Opt-in: with DISTRO_FEATURES:append = " sota-stage" meta-updater's aktualizr-device-prov-hsm
# stages with sota-stage (aktualizr-device-prov-hsm-sota-stage.inc); without it this
# append changes nothing, so adding the layer alone changes no signature of
# meta-updater's recipes (Yocto Project Compatible).
require ${@bb.utils.contains('DISTRO_FEATURES', 'sota-stage', 'aktualizr-device-prov-hsm-sota-stage.inc', '', d)}
