# Stub of OE-core's cargo.bbclass, so that the real sota-stage recipe parses
# here. The tests build the tool with cargo and use the stand-in recipe
# sota-stage-prebuilt-native instead.
