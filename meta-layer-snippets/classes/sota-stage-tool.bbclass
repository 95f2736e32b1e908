# nooelint: oelint.bbclass.underscores - the name the project documents (OE-core has dashed class names too)
# sota-stage-tool.bbclass: where the sota-stage tool comes from, for the
# classes that run it (sota-stage.bbclass, sota-stage-audit.bbclass). It adds
# no task: each of them calls sota_stage_tool_setup(d) from its anonymous
# Python and puts SOTA_STAGE_TOOL and SOTA_STAGE_TOOL_VERSION into the
# vardeps of what runs the tool.

# Where the tool comes from: "native" builds sota-stage-native (Rust, from the
# checkout around this layer or SOTA_STAGE_SRC_URI); "host" runs a sota-stage
# installed on the build host (`cargo install --path . --locked`), listed in
# HOSTTOOLS (`HOSTTOOLS += "sota-stage"` in local.conf), so that no Rust
# recipe is built. Its version is in the task signatures, its path is not.
SOTA_STAGE_TOOL ??= "native"
# The oldest host tool the classes work with.
SOTA_STAGE_HOST_MIN_VERSION ??= "0.1.0"
# The host tool's version (SOTA_STAGE_TOOL = "host"), set at parse time.
SOTA_STAGE_TOOL_VERSION ?= ""

# The tool's recipe, unless the host's tool is used.
SOTA_STAGE_TOOL_DEPENDS = "${@'' if d.getVar('SOTA_STAGE_TOOL') == 'host' else 'sota-stage-native'}"
# nooelint: oelint.vars.dependsclass - the value is sota-stage-native or nothing
DEPENDS:append = " ${SOTA_STAGE_TOOL_DEPENDS}"

def sota_stage_host_tool(d):
    """The version of the host's sota-stage (SOTA_STAGE_TOOL = "host"), found
    where the tasks find it (HOSTTOOLS_DIR); stops the parse with what to do
    when it is missing or too old."""
    import os, subprocess
    how = ('install it on the build host (`cargo install --path . --locked` in the sota-stage '
           'checkout) and add HOSTTOOLS += "sota-stage" to local.conf')
    tool = os.path.join(d.getVar("HOSTTOOLS_DIR") or "", "sota-stage")
    if not os.path.exists(tool):
        bb.fatal('SOTA_STAGE_TOOL is "host" but the tasks have no sota-stage (%s is missing): %s' % (tool, how))
    # An upgraded tool re-parses the recipe, and its version re-runs the tasks.
    bb.parse.mark_dependency(d, os.path.realpath(tool))
    try:
        out = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=60).stdout
        version = out.split()[1]
    except Exception as e:
        bb.fatal('SOTA_STAGE_TOOL is "host" but `%s --version` failed (%s): %s' % (tool, e, how))
    least = d.getVar("SOTA_STAGE_HOST_MIN_VERSION")
    if bb.utils.vercmp_string(version, least) < 0:
        bb.fatal('SOTA_STAGE_TOOL is "host" but the host\'s sota-stage is %s, older than %s: %s' % (version, least, how))
    return version

def sota_stage_tool_setup(d):
    """Checks SOTA_STAGE_TOOL; with "host", sets SOTA_STAGE_TOOL_VERSION to
    the host tool's version (or stops the parse, see sota_stage_host_tool)."""
    tool = d.getVar("SOTA_STAGE_TOOL")
    if tool == "host":
        d.setVar("SOTA_STAGE_TOOL_VERSION", sota_stage_host_tool(d))
    elif tool != "native":
        bb.fatal('SOTA_STAGE_TOOL must be "native" or "host", not "%s"' % tool)
