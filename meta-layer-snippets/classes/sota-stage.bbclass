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
# - The archive is passed by path. Its content is tracked with
#   [file-checksums] on the tasks listed in SOTA_STAGE_ARCHIVE_TASKS; its path
#   is in no task signature ([vardepsexclude]), so moving the file with the
#   same bytes re-runs nothing.
# - No secret is ever a variable: the p12 password and the PKCS#11 PIN are
#   read by the tool from files named by SOTA_P12_PASSWORD_FILE and
#   SOTA_HSM_PIN_FILE. Their content is tracked through
#   SOTA_STAGE_SECRETS_DIGEST, a digest keyed with the archive's bytes: a
#   plain checksum (file-checksums records an md5) would give a short PIN
#   away to anyone who reads a signature file.

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

# --- Per recipe (the recipes and .bbappends of this layer set them) ---
# The method this recipe stages for.
SOTA_STAGE_METHOD ?= "${SOTA_CLIENT_PROV}"
# The hardware ID sota_stage_device and sota_stage_hardware_id write; empty
# for recipes that must not carry it (native and allarch recipes).
SOTA_STAGE_HARDWARE_ID ?= "${SOTA_HARDWARE_ID}"
# The tasks that read the archive: they get its [file-checksums]. Without
# do_sota_check here (or without an archive) the check task is removed.
SOTA_STAGE_ARCHIVE_TASKS ?= "do_sota_check do_install"
# Scratch space in WORKDIR, emptied after each use.
SOTA_STAGE_SCRATCH = "${WORKDIR}/sota-stage-scratch"

DEPENDS:append = " sota-stage-native"

def sota_stage_secrets_digest(d, archive):
    """A digest of the password and PIN files, keyed with the archive's bytes
    (secret too) so that the digest, which lands in signature files, cannot
    be brute-forced back into a short PIN. Empty when there is nothing to
    track or no archive to key it with."""
    import hashlib
    files = [d.getVar(v) or "" for v in ("SOTA_P12_PASSWORD_FILE", "SOTA_HSM_PIN_FILE")]
    if not any(files) or not archive:
        return ""
    digest = hashlib.sha256(b"sota-stage secret files v1\0")
    for path in [archive] + files:
        if not path:
            digest.update(b"none\0")
            continue
        # Re-parse this recipe when the file changes: the digest is a parse-time value.
        bb.parse.mark_dependency(d, path)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            if path == archive:
                return ""
            digest.update(b"unreadable\0")
            continue
        digest.update(b"%d\0" % len(data))
        digest.update(data)
    return digest.hexdigest()

python __anonymous() {
    import os
    for var in ("SOTA_PACKED_CREDENTIALS", "SOTA_P12_PASSWORD_FILE", "SOTA_HSM_PIN_FILE"):
        path = d.getVar(var) or ""
        if path and not os.path.isabs(path):
            bb.fatal("%s must be an absolute path, not '%s'" % (var, path))
        if any(c.isspace() for c in path):
            # [file-checksums] takes a space-separated list.
            bb.fatal("%s must not contain whitespace: '%s'" % (var, path))
    archive = d.getVar("SOTA_PACKED_CREDENTIALS") or ""
    d.setVar("SOTA_STAGE_HAVE_ARCHIVE", "1" if archive else "0")
    tasks = (d.getVar("SOTA_STAGE_ARCHIVE_TASKS") or "").split()
    if archive:
        # The content, not the path: the signature hashes only the file's
        # checksum (the signature data also records its name).
        for task in tasks:
            d.appendVarFlag(task, "file-checksums", " %s:True" % archive)
    if not archive or "do_sota_check" not in tasks:
        bb.build.deltask("do_sota_check", d)
    d.setVar("SOTA_STAGE_SECRETS_DIGEST", sota_stage_secrets_digest(d, archive))
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
    case "$sota_stage_mode" in
    device)
        set -- stage --device-root "$sota_stage_dest"
        ;;
    host)
        # stage always writes device files: into scratch, removed below.
        rm -rf "${SOTA_STAGE_SCRATCH}/device"
        set -- stage --device-root "${SOTA_STAGE_SCRATCH}/device" --host-root "$sota_stage_dest"
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
    rm -rf "${SOTA_STAGE_SCRATCH}/device"
}
# Paths are not part of what is staged: moving a file re-runs nothing. The
# archive's content is in [file-checksums], the password and PIN files' in
# SOTA_STAGE_SECRETS_DIGEST.
sota_stage_exec[vardepsexclude] += "SOTA_PACKED_CREDENTIALS SOTA_P12_PASSWORD_FILE SOTA_HSM_PIN_FILE"
sota_stage_exec[vardeps] += "SOTA_STAGE_SECRETS_DIGEST"

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
sota_stage_run() {
    env -u SOTA_PACKED_CREDENTIALS -u SOTA_CLIENT_PROV -u SOTA_HARDWARE_ID \
        -u SOTA_P12_PASSWORD sota-stage "$@"
}
