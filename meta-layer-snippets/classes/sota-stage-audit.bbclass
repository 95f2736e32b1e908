# nooelint: oelint.bbclass.underscores - the name the project documents (OE-core has dashed class names too)
# sota-stage-audit.bbclass: an image QA step that fails the build when a
# host secret of SOTA_PACKED_CREDENTIALS is in the image's root file system
# (docs/audit.md): the archive itself, a host-only entry (treehub.json,
# targets.sec, client_auth.p12, ...), the OAuth2 client secret, the offline
# signing key in any of garage-sign's encodings, the shared provisioning p12
# outside /var/sota/sota_provisioning_credentials.zip, or a staged secret
# readable by others. Enable it for every image:
#
#   IMAGE_CLASSES += "sota-stage-audit"
#
# It adds do_sota_audit, after do_rootfs and before do_image (where
# OE-core's do_image_qa runs), which runs `sota-stage audit` on
# ${IMAGE_ROOTFS}; its log is temp/log.do_sota_audit. The tool comes from
# where SOTA_STAGE_TOOL says, as for sota-stage.bbclass
# (sota-stage-tool.bbclass): sota-stage-native by default; with "host" the
# build host's (no Rust recipe in the image's graph), whose version, not
# path, is in do_sota_audit's signature.
#
# Signature rules, as in sota-stage.bbclass: the archive is passed by path,
# its content is tracked with [file-checksums] (a change of the credentials
# re-runs the audit), its path is in no signature ([vardepsexclude]), and no
# secret is ever a variable. The tool never prints a secret: paths, the
# members of archives and the names of the secrets only.

# Absolute path of the credentials.zip from the OTA server (meta-updater's
# name). Without it there is nothing to audit against: the task is removed.
SOTA_PACKED_CREDENTIALS ??= ""
# "1": warnings (a container too large to look into) fail the build too.
SOTA_STAGE_AUDIT_STRICT ??= "0"
# More files whose bytes and key material must never be in an image (the
# fleet CA key, RAUC, UEFI or kernel module signing keys): absolute paths,
# space-separated, each passed as `--secret-file`. Like the archive, each is
# in do_sota_audit's signature by content ([file-checksums]), never by path,
# and never read into a variable.
SOTA_STAGE_AUDIT_SECRET_FILES ??= ""

# What else is audited when the image makes it (docs/audit.md): the
# OSTree commit of meta-updater's ostreecommit type (before ostreepush and
# garagesign send it anywhere), and the image files sota-stage reads.
SOTA_STAGE_AUDIT_IMAGE_BASES ?= "ext2 ext3 ext4 ota-ext4 wic"

def sota_stage_audit_types(d):
    """IMAGE_FSTYPES and the types they depend on (IMAGE_TYPEDEP), as
    (type, base) pairs: "wic.gz" is made by do_image_wic."""
    conversions = (d.getVar("CONVERSIONTYPES") or "").split()
    seen, out = set(), []
    todo = (d.getVar("IMAGE_FSTYPES") or "").split()
    while todo and len(seen) < 200:
        t = todo.pop(0)
        if t in seen:
            continue
        seen.add(t)
        base = t
        while "." in base and base.rsplit(".", 1)[1] in conversions:
            base = base.rsplit(".", 1)[0]
        out.append((t, base))
        todo.extend((d.getVar("IMAGE_TYPEDEP:%s" % base) or "").split())
    return out

# SOTA_STAGE_TOOL, SOTA_STAGE_HOST_MIN_VERSION and the DEPENDS on
# sota-stage-native unless the host's tool is used; no task.
inherit sota-stage-tool

python __anonymous() {
    import os
    # As in sota-stage.bbclass: a SOTA_STAGE_TOOL that is neither "native"
    # nor "host", or (with "host") a missing or too old tool, stops the parse.
    sota_stage_tool_setup(d)
    archive = d.getVar("SOTA_PACKED_CREDENTIALS") or ""
    if not archive:
        bb.build.deltask("do_sota_audit", d)
        return
    if not os.path.isabs(archive):
        bb.fatal("SOTA_PACKED_CREDENTIALS must be an absolute path, not '%s'" % archive)
    if any(c.isspace() for c in archive):
        # [file-checksums] takes a space-separated list.
        bb.fatal("SOTA_PACKED_CREDENTIALS must not contain whitespace: '%s'" % archive)
    # The content, not the path, is in the signature.
    d.appendVarFlag("do_sota_audit", "file-checksums", " %s:True" % archive)
    for secret in (d.getVar("SOTA_STAGE_AUDIT_SECRET_FILES") or "").split():
        if not os.path.isabs(secret):
            bb.fatal("SOTA_STAGE_AUDIT_SECRET_FILES: each file must be an absolute path, not '%s'" % secret)
        d.appendVarFlag("do_sota_audit", "file-checksums", " %s:True" % secret)
    checksums = d.getVarFlag("do_sota_audit", "file-checksums") or ""
    types = sota_stage_audit_types(d)
    bases = set(base for _, base in types)
    if "ostreecommit" in bases:
        before = ["do_image_complete"] + ["do_image_%s" % t for t in ("ostreepush", "garagesign") if t in bases]
        bb.build.addtask("do_sota_audit_ostree", " ".join(before), "do_image_ostreecommit", d)
        d.setVarFlag("do_sota_audit_ostree", "file-checksums", checksums)
    readable = (d.getVar("SOTA_STAGE_AUDIT_IMAGE_BASES") or "").split()
    images = [t for t, base in types if base in readable]
    if images:
        d.setVar("SOTA_STAGE_AUDIT_IMAGES", " ".join(images))
        after = sorted(set("do_image_%s" % base.replace("-", "_").replace(".", "_") for t, base in types if base in readable))
        bb.build.addtask("do_sota_audit_images", "do_image_complete", " ".join(after), d)
        d.setVarFlag("do_sota_audit_images", "file-checksums", checksums)
}

# The report of one run of `sota-stage audit`, for every audit task: $1
# what was audited, $2 what to add after a leak, $3 the tool's output, $4
# its exit status. A leak stops the build; warnings are shown, or stop it
# with SOTA_STAGE_AUDIT_STRICT = "1".
sota_stage_audit_report() {
    if [ "$4" != 0 ]; then
        bbfatal "sota-stage audit: host secrets of SOTA_PACKED_CREDENTIALS in $1$2:
$(cat "$3")"
    elif grep -q '^warning' "$3"; then
        if [ "${SOTA_STAGE_AUDIT_STRICT}" = 1 ]; then
            bbfatal "sota-stage audit of $1 (SOTA_STAGE_AUDIT_STRICT = 1):
$(cat "$3")"
        fi
        bbwarn "sota-stage audit of $1:
$(cat "$3")"
    else
        bbnote "$(tail -n 1 "$3")"
    fi
}

# Under pseudo, as OE-core's image tasks: the modes checked are the ones the
# image will have.
fakeroot do_sota_audit() {
    sota_stage_audit_out="${T}/sota-stage-audit.txt"
    # The paths hold no whitespace (split on it by the parse above).
    set --
    for sota_stage_secret in ${SOTA_STAGE_AUDIT_SECRET_FILES}; do
        set -- "$@" --secret-file "$sota_stage_secret"
    done
    sota_stage_status=0
    env -u SOTA_PACKED_CREDENTIALS sota-stage audit \
        --credentials "${SOTA_PACKED_CREDENTIALS}" "$@" "${IMAGE_ROOTFS}" \
        > "$sota_stage_audit_out" 2>&1 || sota_stage_status=$?
    sota_stage_audit_report "the root file system of ${PN}" \
        "; find the recipe that installs each path (oe-pkgdata-util find-path /PATH)" \
        "$sota_stage_audit_out" "$sota_stage_status"
}
do_sota_audit[doc] = "Fails the build when a host secret of SOTA_PACKED_CREDENTIALS is in IMAGE_ROOTFS (sota-stage audit)"
do_sota_audit[vardepsexclude] += "SOTA_PACKED_CREDENTIALS SOTA_STAGE_AUDIT_SECRET_FILES"
# The tool: sota-stage-native's (its own signature, through DEPENDS) or the
# host's, by version.
do_sota_audit[vardeps] += "SOTA_STAGE_TOOL SOTA_STAGE_TOOL_VERSION"
addtask sota_audit after do_rootfs before do_image

# The OSTree commit this build made (meta-updater writes its id to
# ${WORKDIR}/ostree_manifest), and only it: the repository keeps every
# earlier build. Under the lock meta-updater's own tasks take.
do_sota_audit_ostree() {
    sota_stage_rev=""
    if [ -f "${WORKDIR}/ostree_manifest" ]; then
        sota_stage_rev=$(cat "${WORKDIR}/ostree_manifest")
    fi
    [ -n "$sota_stage_rev" ] || sota_stage_rev="${OSTREE_BRANCHNAME}"
    set --
    for sota_stage_secret in ${SOTA_STAGE_AUDIT_SECRET_FILES}; do
        set -- "$@" --secret-file "$sota_stage_secret"
    done
    sota_stage_audit_out="${T}/sota-stage-audit-ostree.txt"
    sota_stage_status=0
    env -u SOTA_PACKED_CREDENTIALS sota-stage audit \
        --credentials "${SOTA_PACKED_CREDENTIALS}" "$@" \
        --ostree-ref "$sota_stage_rev" "${OSTREE_REPO}" \
        > "$sota_stage_audit_out" 2>&1 || sota_stage_status=$?
    sota_stage_audit_report "the OSTree commit $sota_stage_rev of ${PN}" ", before it is pushed" \
        "$sota_stage_audit_out" "$sota_stage_status"
}
do_sota_audit_ostree[doc] = "Fails the build when a host secret of SOTA_PACKED_CREDENTIALS is in the OSTree commit the image made, before ostreepush and garagesign"
do_sota_audit_ostree[lockfiles] += "${OSTREE_REPO}/ostree.lock"
do_sota_audit_ostree[vardepsexclude] += "SOTA_PACKED_CREDENTIALS SOTA_STAGE_AUDIT_SECRET_FILES"
do_sota_audit_ostree[vardeps] += "SOTA_STAGE_TOOL SOTA_STAGE_TOOL_VERSION"

# The image files of IMAGE_FSTYPES sota-stage reads (SOTA_STAGE_AUDIT_IMAGE_BASES,
# compressed or not), after they are made and before they are deployed.
do_sota_audit_images() {
    set --
    for sota_stage_secret in ${SOTA_STAGE_AUDIT_SECRET_FILES}; do
        set -- "$@" --secret-file "$sota_stage_secret"
    done
    sota_stage_audit_out="${T}/sota-stage-audit-image.txt"
    for sota_stage_type in ${SOTA_STAGE_AUDIT_IMAGES}; do
        for sota_stage_image in "${IMGDEPLOYDIR}/${IMAGE_NAME}"*".$sota_stage_type"; do
            [ -f "$sota_stage_image" ] || continue
            sota_stage_status=0
            env -u SOTA_PACKED_CREDENTIALS sota-stage audit \
                --credentials "${SOTA_PACKED_CREDENTIALS}" "$@" "$sota_stage_image" \
                > "$sota_stage_audit_out" 2>&1 || sota_stage_status=$?
            sota_stage_audit_report "the image file $(basename "$sota_stage_image") of ${PN}" "" \
                "$sota_stage_audit_out" "$sota_stage_status"
        done
    done
}
do_sota_audit_images[doc] = "Fails the build when a host secret of SOTA_PACKED_CREDENTIALS is in an image file of IMAGE_FSTYPES (ext4, ota-ext4, wic, compressed or not)"
do_sota_audit_images[vardepsexclude] += "SOTA_PACKED_CREDENTIALS SOTA_STAGE_AUDIT_SECRET_FILES"
do_sota_audit_images[vardeps] += "SOTA_STAGE_TOOL SOTA_STAGE_TOOL_VERSION"
