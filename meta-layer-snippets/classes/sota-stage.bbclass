# nooelint: oelint.bbclass.underscores - the name the project documents (OE-core has dashed class names too)
# sota-stage.bbclass: run the native sota-stage tool from a recipe's tasks to
# put OTA credentials and aktualizr config into ${D} or a native sysroot.
#
#   inherit sota-stage
#   do_install() {
#       sota_stage_device ${D}                        # a target recipe
#   }
#   do_install() {
#       sota_stage_host ${D}${datadir}/sota-stage     # a native recipe
#   }
#
# Signature rules (README.md, "Task signatures and the sstate cache"):
# - The archive is passed by path; its path is in no task signature
#   ([vardepsexclude]), so moving the file with the same bytes re-runs nothing.
# - Each side's content, not the whole archive: the tasks listed in
#   SOTA_STAGE_ARCHIVE_TASKS depend on SOTA_STAGE_CONTENT_DIGEST, a digest of
#   only the entries the recipe's side (SOTA_STAGE_SIDE: device or host) can
#   get, keyed with that side's own secret entries (the device's p12; the
#   host's targets.sec or client_auth.p12), computed at parse time (the
#   recipe is re-parsed when the archive changes). Rotating a host-only
#   secret does not rebuild the device recipes, and the reverse.
# - No secret is ever a variable: the p12 password and the PKCS#11 PIN are
#   read by the tool from files named by SOTA_P12_PASSWORD_FILE and
#   SOTA_HSM_PIN_FILE. Their content is tracked through
#   SOTA_STAGE_SECRETS_DIGEST, keyed the same way: a plain checksum
#   (file-checksums records an md5) would give a short PIN away to anyone
#   who reads a signature file.

# --- Inputs (meta-updater's names where it has them) ---
# Absolute path of the credentials.zip from the OTA server.
SOTA_PACKED_CREDENTIALS ??= ""
# shared-cred, device-cred, device-cred-hsm, or meta-updater's
# aktualizr-shared-prov, aktualizr-device-prov, aktualizr-device-prov-hsm.
SOTA_CLIENT_PROV ??= "aktualizr-shared-prov"
SOTA_HARDWARE_ID ??= "${MACHINE}"
# A file holding the password of autoprov_credentials.p12 (none: empty
# password, as OTA Connect makes them). Never put the password itself in a
# variable: it would be written into the signature files.
SOTA_P12_PASSWORD_FILE ??= ""
# device-cred-hsm: the PKCS#11 module on the device, a file holding the user
# PIN (none: aktualizr's example PIN 1234, with a warning), the token ids.
SOTA_HSM_MODULE ??= "${libdir}/softhsm/libsofthsm2.so"
SOTA_HSM_PIN_FILE ??= ""
SOTA_HSM_TLS_CERT_ID ??= "01"
SOTA_HSM_TLS_KEY_ID ??= "02"
SOTA_HSM_UPTANE_KEY_ID ??= "03"
# Entries no tool reads: "" refuses the archive, "host" stages them with the
# host files, "drop" leaves them out.
SOTA_STAGE_UNKNOWN ??= ""
# "0": do not pin root.json under /var/sota/import (trust on first use).
SOTA_STAGE_ROOT_PINNING ??= "1"
# "1": accept a plain-http autoprov.url (local test servers only).
SOTA_STAGE_ALLOW_HTTP ??= "0"
# aktualizr's [telemetry] report_config sends its whole configuration, the
# p12 password and the PKCS#11 PIN included, to the server. "auto": the
# method's fragment says report_config = false when it holds one; "off":
# always; "on": never (aktualizr's default, true, stays).
SOTA_STAGE_REPORT_CONFIG ??= "auto"

# Where the tool comes from (SOTA_STAGE_TOOL: "native" builds
# sota-stage-native, "host" runs the build host's), SOTA_STAGE_HOST_MIN_VERSION
# and the DEPENDS on sota-stage-native: sota-stage-tool.bbclass, shared with
# sota-stage-audit.bbclass.
inherit sota-stage-tool

# --- Per recipe (the recipes and .bbappends of this layer set them) ---
# Which side of the archive the recipe stages: "device" or "host". Its tasks
# follow only that side's content.
SOTA_STAGE_SIDE ?= "device"
# The method this recipe stages for.
SOTA_STAGE_METHOD ?= "${SOTA_CLIENT_PROV}"
# The hardware ID sota_stage_device and sota_stage_hardware_id write; empty
# for recipes that must not carry it (native and allarch recipes).
SOTA_STAGE_HARDWARE_ID ?= "${SOTA_HARDWARE_ID}"
# The tasks that read the archive: they depend on SOTA_STAGE_CONTENT_DIGEST. Without
# do_sota_check here (or without an archive) the check task is removed.
SOTA_STAGE_ARCHIVE_TASKS ?= "do_sota_check do_install"
# Scratch space in WORKDIR, emptied after each use.
SOTA_STAGE_SCRATCH = "${WORKDIR}/sota-stage-scratch"
# The manifest of each staging run (never in ${D}); do_sota_verify checks
# ${D} (or the host folder) against them before anything is packaged.
SOTA_STAGE_MANIFESTS = "${WORKDIR}/sota-stage-manifests"

# Entries only host tools read, and entries only the device gets (the tool's
# split, domain.md section 1). Anything else (root.json, server_ca.pem,
# director.root.json, entries no tool knows) counts for both sides.
SOTA_STAGE_HOST_ONLY_ENTRIES = "treehub.json client_auth.p12 server.p12 api_gateway.url tufrepo.url targets.pub targets.sec provision.json"
SOTA_STAGE_DEVICE_ONLY_ENTRIES = "autoprov.url autoprov_credentials.p12"
# Each side's secret entries, long random keys: the key of that side's digests.
SOTA_STAGE_DEVICE_KEY_ENTRIES = "autoprov_credentials.p12"
SOTA_STAGE_HOST_KEY_ENTRIES = "targets.sec client_auth.p12 server.p12"

def sota_stage_side_content(d, archive, side):
    """(key, content) of one side of the archive: the key is the side's secret
    entries (the whole archive when the side has none, or when the file is not
    a readable zip: the tool then says what is wrong), the content every entry
    of the side, name, size and bytes, sorted."""
    import zipfile
    other_only = set((d.getVar("SOTA_STAGE_DEVICE_ONLY_ENTRIES" if side == "host" else "SOTA_STAGE_HOST_ONLY_ENTRIES") or "").split())
    key_names = set((d.getVar("SOTA_STAGE_HOST_KEY_ENTRIES" if side == "host" else "SOTA_STAGE_DEVICE_KEY_ENTRIES") or "").split())
    limit = 64 * 1024 * 1024
    try:
        with open(archive, "rb") as f:
            whole = f.read(limit + 1)
    except OSError:
        return (b"", b"unreadable")
    try:
        import io
        key, content, total = b"", b"", 0
        with zipfile.ZipFile(io.BytesIO(whole)) as z:
            for info in sorted(z.infolist(), key=lambda i: i.filename):
                if info.is_dir() or info.filename in other_only:
                    continue
                total += info.file_size
                if total > limit:
                    raise ValueError("too big")
                data = z.read(info)
                content += b"%s\0%d\0" % (info.filename.encode("utf-8", "replace"), len(data)) + data
                if info.filename in key_names:
                    key += data
        if not key:
            key = whole
        return (key, content)
    except Exception:
        return (whole, whole)

def sota_stage_digests(d, archive, side):
    """SOTA_STAGE_CONTENT_DIGEST and SOTA_STAGE_SECRETS_DIGEST for one side:
    HMAC-SHA256 keyed with the side's secret entries, so that the digests,
    which land in signature files, follow the side's content and cannot be
    brute-forced back into a short password, PIN or OAuth2 secret."""
    import hashlib, hmac
    if not archive:
        return ("", "")
    # Re-parse this recipe when the archive changes: the digests are parse-time values.
    bb.parse.mark_dependency(d, archive)
    key, content = sota_stage_side_content(d, archive, side)
    key = hashlib.sha256(b"sota-stage key v2\0" + key).digest()
    content_digest = hmac.new(key, b"sota-stage %s content v2\0" % side.encode() + content, hashlib.sha256).hexdigest()
    files = [d.getVar(v) or "" for v in ("SOTA_P12_PASSWORD_FILE", "SOTA_HSM_PIN_FILE")]
    if not any(files):
        return (content_digest, "")
    secrets = hmac.new(key, b"sota-stage secret files v2\0", hashlib.sha256)
    for path in files:
        if not path:
            secrets.update(b"none\0")
            continue
        bb.parse.mark_dependency(d, path)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            secrets.update(b"unreadable\0")
            continue
        secrets.update(b"%d\0" % len(data))
        secrets.update(data)
    return (content_digest, secrets.hexdigest())

python __anonymous() {
    import os
    for var in ("SOTA_PACKED_CREDENTIALS", "SOTA_P12_PASSWORD_FILE", "SOTA_HSM_PIN_FILE"):
        path = d.getVar(var) or ""
        if path and not os.path.isabs(path):
            bb.fatal("%s must be an absolute path, not '%s'" % (var, path))
        if any(c.isspace() for c in path):
            # meta-updater puts the path in a SRC_URI (a space-separated list).
            bb.fatal("%s must not contain whitespace: '%s'" % (var, path))
    sota_stage_tool_setup(d)
    side = d.getVar("SOTA_STAGE_SIDE")
    if side not in ("device", "host"):
        bb.fatal('SOTA_STAGE_SIDE must be "device" or "host", not "%s"' % side)
    archive = d.getVar("SOTA_PACKED_CREDENTIALS") or ""
    d.setVar("SOTA_STAGE_HAVE_ARCHIVE", "1" if archive else "0")
    tasks = (d.getVar("SOTA_STAGE_ARCHIVE_TASKS") or "").split()
    content, secrets = sota_stage_digests(d, archive, side)
    d.setVar("SOTA_STAGE_CONTENT_DIGEST", content)
    d.setVar("SOTA_STAGE_SECRETS_DIGEST", secrets)
    if archive:
        # The side's content, not the path nor the other side's entries.
        for task in tasks:
            d.appendVarFlag(task, "vardeps", " SOTA_STAGE_CONTENT_DIGEST")
    if not archive or "do_sota_check" not in tasks:
        bb.build.deltask("do_sota_check", d)
}

# sota_stage_device DESTDIR: the device files for SOTA_STAGE_METHOD under
# DESTDIR (a recipe's ${D}), plus 40-hardware-id.toml when
# SOTA_STAGE_HARDWARE_ID is set.
sota_stage_device() {
    sota_stage_exec device "$1"
}

# sota_stage_host DESTDIR: every file a host tool (garage-push, garage-sign)
# reads, and credentials.zip, a host-only archive, under DESTDIR.
sota_stage_host() {
    sota_stage_exec host "$1"
}

# sota_stage_fragment DESTDIR: only the method's config fragment,
# DESTDIR/usr/lib/sota/conf.d/20-sota-<method>.toml; needs no archive.
sota_stage_fragment() {
    sota_stage_exec fragment "$1"
}

# sota_stage_hardware_id DESTDIR: DESTDIR/usr/lib/sota/conf.d/40-hardware-id.toml
# for SOTA_STAGE_HARDWARE_ID (nothing when it is empty).
sota_stage_hardware_id() {
    [ -n "${SOTA_STAGE_HARDWARE_ID}" ] || return 0
    install -d "$1/usr/lib/sota/conf.d"
    # The method only selects templates; the hardware-ID fragment is the
    # same for all of them. Mode and mtime (SOURCE_DATE_EPOCH) are the tool's.
    sota_stage_call render --method shared-cred --hardware-id "${SOTA_STAGE_HARDWARE_ID}" \
        --fragment hardware-id --output-dir "$1/usr/lib/sota/conf.d"
}

# sota_stage_check: fails with the tool's own message when the archive cannot
# be staged for SOTA_STAGE_METHOD (or the hardware ID is refused). Writes
# nothing that stays.
sota_stage_check() {
    rm -rf "${SOTA_STAGE_SCRATCH}/check"
    mkdir -p "${SOTA_STAGE_SCRATCH}/check"
    sota_stage_exec check "${SOTA_STAGE_SCRATCH}/check/fragment.toml"
    rm -rf "${SOTA_STAGE_SCRATCH}/check"
    if [ -n "${SOTA_STAGE_HARDWARE_ID}" ]; then
        sota_stage_call render --method shared-cred --hardware-id "${SOTA_STAGE_HARDWARE_ID}" > /dev/null
    fi
}

do_sota_check() {
    sota_stage_check
}
do_sota_check[doc] = "Checks SOTA_PACKED_CREDENTIALS for SOTA_STAGE_METHOD with sota-stage before anything is staged"
addtask sota_check after do_prepare_recipe_sysroot before do_configure do_install

# The one place that builds the tool's command line. MODE: device, host,
# fragment or check; DEST: the folder (or, for check, the file) to write.
sota_stage_exec() {
    sota_stage_mode="$1"
    sota_stage_dest="$2"
    case "${SOTA_STAGE_METHOD}" in
    shared-cred|aktualizr-shared-prov) sota_stage_method=shared-cred ;;
    device-cred|aktualizr-device-prov) sota_stage_method=device-cred ;;
    device-cred-hsm|aktualizr-device-prov-hsm) sota_stage_method=device-cred-hsm ;;
    *) sota_stage_method="${SOTA_STAGE_METHOD}" ;;  # the tool says what is wrong
    esac
    mkdir -p "${SOTA_STAGE_MANIFESTS}"
    sota_stage_manifest="${SOTA_STAGE_MANIFESTS}/$(find "${SOTA_STAGE_MANIFESTS}" -name '*.json' | wc -l)-$sota_stage_mode.json"
    case "$sota_stage_mode" in
    device)
        set -- stage --device-root "$sota_stage_dest" --manifest "$sota_stage_manifest"
        ;;
    host)
        # stage always writes device files: into scratch (0700 folders), kept
        # for do_sota_verify (the manifest lists them) and removed by it.
        sota_stage_scratch_device="${sota_stage_manifest%.json}-device"
        rm -rf "$sota_stage_scratch_device"
        set -- stage --device-root "$sota_stage_scratch_device" --host-root "$sota_stage_dest" \
            --manifest "$sota_stage_manifest"
        ;;
    fragment)
        install -d "$sota_stage_dest/usr/lib/sota/conf.d"
        set -- render --output "$sota_stage_dest/usr/lib/sota/conf.d/20-sota-$sota_stage_method.toml"
        ;;
    check)
        set -- render --output "$sota_stage_dest"
        ;;
    *)
        bbfatal "sota_stage_exec: unknown mode '$sota_stage_mode'"
        ;;
    esac
    set -- "$@" --method "$sota_stage_method"
    if [ "$sota_stage_mode" != fragment ]; then
        if [ -z "${SOTA_PACKED_CREDENTIALS}" ]; then
            bbfatal "${PN}: SOTA_PACKED_CREDENTIALS is not set; point it at the credentials.zip of your OTA server"
        fi
        set -- "$@" --credentials "${SOTA_PACKED_CREDENTIALS}"
        if [ "${SOTA_STAGE_ALLOW_HTTP}" = 1 ]; then
            set -- "$@" --allow-http
        fi
    fi
    if [ "$sota_stage_mode" = device ] || [ "$sota_stage_mode" = host ]; then
        if [ -n "${SOTA_STAGE_UNKNOWN}" ]; then
            set -- "$@" --unknown "${SOTA_STAGE_UNKNOWN}"
        fi
        if [ "${SOTA_STAGE_ROOT_PINNING}" != 1 ]; then
            set -- "$@" --no-root-pinning
        fi
    fi
    if [ "$sota_stage_mode" = device ] && [ -n "${SOTA_STAGE_HARDWARE_ID}" ]; then
        set -- "$@" --hardware-id "${SOTA_STAGE_HARDWARE_ID}"
    fi
    if [ -n "${SOTA_P12_PASSWORD_FILE}" ]; then
        set -- "$@" --p12-password-file "${SOTA_P12_PASSWORD_FILE}"
    fi
    # Only when not the default: a host tool older than the flag still runs.
    if [ "${SOTA_STAGE_REPORT_CONFIG}" != auto ]; then
        set -- "$@" --report-config "${SOTA_STAGE_REPORT_CONFIG}"
    fi
    if [ "$sota_stage_method" = device-cred-hsm ]; then
        set -- "$@" --p11-module "${SOTA_HSM_MODULE}" \
            --p11-tls-cert-id "${SOTA_HSM_TLS_CERT_ID}" \
            --p11-tls-key-id "${SOTA_HSM_TLS_KEY_ID}" \
            --p11-uptane-key-id "${SOTA_HSM_UPTANE_KEY_ID}"
        if [ -n "${SOTA_HSM_PIN_FILE}" ]; then
            set -- "$@" --p11-pin-file "${SOTA_HSM_PIN_FILE}"
        elif [ "$sota_stage_mode" = check ] || [ "$sota_stage_mode" = fragment ]; then
            bbwarn "${PN}: SOTA_HSM_PIN_FILE is not set: the device gets aktualizr's example PKCS#11 PIN 1234"
        fi
    fi
    sota_stage_call "$@"
    case "$sota_stage_mode" in
    device)
        printf '%s\n%s\n' "$sota_stage_dest" "" > "$sota_stage_manifest.roots"
        ;;
    host)
        printf '%s\n%s\n' "$sota_stage_scratch_device" "$sota_stage_dest" > "$sota_stage_manifest.roots"
        ;;
    esac
}
# Paths are not part of what is staged: moving a file re-runs nothing. The
# side's content of the archive is in SOTA_STAGE_CONTENT_DIGEST (on the tasks
# of SOTA_STAGE_ARCHIVE_TASKS), the password and PIN files' in
# SOTA_STAGE_SECRETS_DIGEST.
sota_stage_exec[vardepsexclude] += "SOTA_PACKED_CREDENTIALS SOTA_P12_PASSWORD_FILE SOTA_HSM_PIN_FILE"
sota_stage_exec[vardeps] += "SOTA_STAGE_SECRETS_DIGEST"

# sota_stage_manifest_drop MANIFEST ROOT [PATH...]: drops the entries of ROOT
# (device or host) from a manifest, all of them or only PATHs (relative, as
# in the manifest).
sota_stage_manifest_drop() {
    python3 - "$@" <<'SOTA_STAGE_PY'
import json, sys
manifest, root, paths = sys.argv[1], sys.argv[2], set(sys.argv[3:])
with open(manifest) as f:
    data = json.load(f)
data["files"] = [e for e in data["files"]
                 if not (e["root"] == root and (not paths or e["path"] in paths))]
# A folder the manifest records stays only while a file of its side is
# still listed under it: the recipe removes folders it emptied.
kept = [e["path"] for e in data["files"] if e["root"] == root]
data["dirs"] = [d for d in data.get("dirs", [])
                if d["root"] != root
                or any(p.startswith(d["path"] + "/") for p in kept)]
with open(manifest, "w") as f:
    json.dump(data, f, indent=2)
SOTA_STAGE_PY
}

# sota_stage_unstage DESTDIR PATH...: removes files that sota_stage_device
# staged under DESTDIR on purpose (PATH relative to DESTDIR), and from the
# manifests, so that do_sota_verify does not report them missing.
sota_stage_unstage() {
    sota_stage_unstage_root="$1"
    shift
    for sota_stage_path in "$@"; do
        rm "$sota_stage_unstage_root/$sota_stage_path"
    done
    for sota_stage_manifest in "${SOTA_STAGE_MANIFESTS}"/*-device.json; do
        [ -e "$sota_stage_manifest" ] || continue
        if [ "$(head -n 1 "$sota_stage_manifest.roots")" = "$sota_stage_unstage_root" ]; then
            sota_stage_manifest_drop "$sota_stage_manifest" device "$@"
        fi
    done
}

# sota_stage_verify: every staging run's files are still what was staged
# (content, mode, no file added next to them); fails with the tool's report.
sota_stage_verify() {
    mkdir -p "${SOTA_STAGE_SCRATCH}"
    for sota_stage_manifest in "${SOTA_STAGE_MANIFESTS}"/*.json; do
        [ -e "$sota_stage_manifest" ] || continue
        sota_stage_device_root=$(sed -n 1p "$sota_stage_manifest.roots")
        sota_stage_host_root=$(sed -n 2p "$sota_stage_manifest.roots")
        set -- verify --manifest "$sota_stage_manifest" --device-root "$sota_stage_device_root"
        if [ -n "$sota_stage_host_root" ]; then
            set -- "$@" --host-root "$sota_stage_host_root"
        fi
        sota_stage_status=0
        sota_stage_run "$@" > "${SOTA_STAGE_SCRATCH}/verify" 2>&1 || sota_stage_status=$?
        if [ -n "$sota_stage_host_root" ]; then
            # The device files of a host staging run are scratch: checked, then gone.
            rm -rf "$sota_stage_device_root"
        fi
        if [ "$sota_stage_status" != 0 ]; then
            bbfatal "sota-stage verify failed for ${PN}: what do_install staged was changed afterwards:
$(cat "${SOTA_STAGE_SCRATCH}/verify")"
        fi
        bbnote "$(cat "${SOTA_STAGE_SCRATCH}/verify")"
    done
    rm -f "${SOTA_STAGE_SCRATCH}/verify"
}

do_sota_verify() {
    sota_stage_verify
}
do_sota_verify[doc] = "Checks what sota-stage staged in do_install against its manifests, before packaging"
addtask sota_verify after do_install before do_package do_populate_sysroot
# A new do_install run starts with no manifest.
do_install[cleandirs] += "${SOTA_STAGE_MANIFESTS}"

# sota_stage_call ARGS...: runs the tool (stdout passes through); on failure
# stops the task with the tool's own message. The tool never prints a secret.
sota_stage_call() {
    mkdir -p "${SOTA_STAGE_SCRATCH}"
    if ! sota_stage_run "$@" 2> "${SOTA_STAGE_SCRATCH}/stderr"; then
        bbfatal "sota-stage $1 failed for ${PN}:
$(cat "${SOTA_STAGE_SCRATCH}/stderr")"
    fi
    # Its report ("staged ... files written"), and warnings as warnings.
    if grep -q '^warning' "${SOTA_STAGE_SCRATCH}/stderr"; then
        bbwarn "$(cat "${SOTA_STAGE_SCRATCH}/stderr")"
    elif [ -s "${SOTA_STAGE_SCRATCH}/stderr" ]; then
        bbnote "$(cat "${SOTA_STAGE_SCRATCH}/stderr")"
    fi
    rm -f "${SOTA_STAGE_SCRATCH}/stderr"
}

# The tool with none of its environment fallbacks: every input is a flag.
# It is sota-stage-native's from the recipe sysroot, or (SOTA_STAGE_TOOL =
# "host") the host's, whose version is in the signature.
sota_stage_run() {
    env -u SOTA_PACKED_CREDENTIALS -u SOTA_CLIENT_PROV -u SOTA_HARDWARE_ID \
        -u SOTA_P12_PASSWORD sota-stage "$@"
}
sota_stage_run[vardeps] += "SOTA_STAGE_TOOL SOTA_STAGE_TOOL_VERSION"
