#!/usr/bin/env python3
"""The OTA server's device API, as much of it as aktualizr calls on a first
boot, for tests/aktualizr_e2e.rs. Python 3 standard library plus the
`openssl` command; nothing from PyPI.

    server.py init DIR
        makes an ED25519 key per repository (director, image repository) and
        signs version 1 of each root: DIR/director/1.root.json and
        DIR/repo/1.root.json, the roots a credentials.zip pins.
    server.py serve DIR --cert PEM --key PEM --client-ca PEM --device-ca PEM
                        --device-ca-key PEM --server-ca PEM --log FILE
                        [--host 127.0.0.1] [--port 0] [--port-file FILE]
        serves the device gateway over TLS, a client certificate of
        --client-ca required. Every request, and every failed TLS handshake,
        is one JSON line in --log: method, path, the client certificate's
        subject CN, the body (`body` where it is JSON, else `body_text`
        where it is UTF-8, else its size), the status answered.

Endpoints (paths as aktualizr calls them under the gateway URL):
  POST /devices              shared-cred registration: a PKCS#12 (empty
                             password) with a new EC key, its certificate
                             (CN = deviceId, issued by --device-ca) and the
                             --server-ca certificate
  POST /director/ecus        ECU registration, remembered per device (CN)
  PUT  /core/installed, /system_info/network, /system_info, /director/manifest
  POST /system_info/config, /events
  GET  /director/N.root.json, /director/targets.json (one target for the
       primary ECU of the asking device, once it registered its ECUs)
  GET  /repo/N.root.json, /repo/timestamp.json, /repo/snapshot.json,
       /repo/targets.json, /repo/targets/NAME
Metadata is signed over its canonical JSON (keys sorted, no whitespace:
aktualizr's Utils::jsonToCanonicalStr) with `openssl pkeyutl -rawin`.
"""

import argparse
import base64
import hashlib
import http.server
import json
import os
import ssl
import subprocess
import sys
import tempfile
import threading

EXPIRES = "2040-01-01T00:00:00Z"
TARGET_NAME = "sota-e2e-image-1"
TARGET_BYTES = b"sota-stage end-to-end test image\n"


def openssl(*args, cwd=None):
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True)
    if done.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (" ".join(args), done.stderr.decode(errors="replace")))
    return done.stdout


def canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


class Key:
    """An ED25519 key as a PEM file, its public half in Uptane form."""

    def __init__(self, path):
        self.path = path
        der = openssl("pkey", "-in", path, "-pubout", "-outform", "DER")
        self.public_hex = der[-32:].hex()
        self.keyid = hashlib.sha256(canonical(self.public_hex)).hexdigest()

    @staticmethod
    def make(path):
        openssl("genpkey", "-algorithm", "ed25519", "-out", path)
        os.chmod(path, 0o600)
        return Key(path)

    def uptane(self):
        return {"keytype": "ED25519", "keyval": {"public": self.public_hex}}

    def sign(self, signed):
        with tempfile.TemporaryDirectory() as tmp:
            message = os.path.join(tmp, "message")
            with open(message, "wb") as f:
                f.write(canonical(signed))
            signature = openssl("pkeyutl", "-sign", "-rawin", "-inkey", self.path, "-in", message)
        sig = base64.b64encode(signature).decode()
        return {"signed": signed, "signatures": [{"keyid": self.keyid, "method": "ed25519", "sig": sig}]}


def root_of(key, roles):
    return {
        "_type": "Root",
        "version": 1,
        "expires": EXPIRES,
        "consistent_snapshot": False,
        "keys": {key.keyid: key.uptane()},
        "roles": {role: {"keyids": [key.keyid], "threshold": 1} for role in roles},
    }


def init(state):
    for repo, roles in (("director", ["root", "targets"]), ("repo", ["root", "targets", "snapshot", "timestamp"])):
        folder = os.path.join(state, repo)
        os.makedirs(folder, exist_ok=True)
        key = Key.make(os.path.join(folder, "key.pem"))
        with open(os.path.join(folder, "1.root.json"), "wb") as f:
            f.write(json.dumps(key.sign(root_of(key, roles)), indent=2).encode())


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.log = open(args.log, "a", encoding="utf-8")
        self.director_key = Key(os.path.join(args.state, "director", "key.pem"))
        self.repo_key = Key(os.path.join(args.state, "repo", "key.pem"))
        # device id (client certificate CN) -> the body of its POST /director/ecus
        self.ecus = {}

    def record(self, entry):
        with self.lock:
            self.log.write(json.dumps(entry, sort_keys=True) + "\n")
            self.log.flush()

    def target_entry(self, custom):
        return {
            "hashes": {"sha256": hashlib.sha256(TARGET_BYTES).hexdigest()},
            "length": len(TARGET_BYTES),
            "custom": custom,
        }

    def director_targets(self, device):
        with self.lock:
            registered = self.ecus.get(device)
        targets = {}
        if registered:
            serial = registered.get("primary_ecu_serial", "")
            hwid = next(
                (e.get("hardware_identifier", "") for e in registered.get("ecus", []) if e.get("ecu_serial") == serial),
                "",
            )
            targets[TARGET_NAME] = self.target_entry({"ecuIdentifiers": {serial: {"hardwareId": hwid}}})
        signed = {"_type": "Targets", "version": 1, "expires": EXPIRES, "targets": targets, "custom": {}}
        return self.director_key.sign(signed)

    def image_repo(self):
        """targets, snapshot and timestamp of the image repository: one
        target for every hardware id registered so far."""
        with self.lock:
            hwids = sorted(
                {e.get("hardware_identifier", "") for body in self.ecus.values() for e in body.get("ecus", [])}
            )
        targets = self.repo_key.sign(
            {
                "_type": "Targets",
                "version": 1,
                "expires": EXPIRES,
                "targets": {TARGET_NAME: self.target_entry({"hardwareIds": hwids, "version": "1"})},
            }
        )
        targets_bytes = canonical(targets)
        snapshot_bytes = self.describing("Snapshot", "targets.json", targets_bytes)
        timestamp_bytes = self.describing("Timestamp", "snapshot.json", snapshot_bytes)
        return {"targets.json": targets_bytes, "snapshot.json": snapshot_bytes, "timestamp.json": timestamp_bytes}

    def describing(self, kind, name, data):
        """The image repository's metadata of type kind (Snapshot,
        Timestamp) describing the file name, whose bytes are data: version 1,
        its length and SHA-256; signed, canonical."""
        signed = self.repo_key.sign(
            {
                "_type": kind,
                "version": 1,
                "expires": EXPIRES,
                "meta": {
                    name: {
                        "version": 1,
                        "length": len(data),
                        "hashes": {"sha256": hashlib.sha256(data).hexdigest()},
                    }
                },
            }
        )
        return canonical(signed)

    def device_p12(self, device_id):
        """A new EC key and certificate for device_id, in a PKCS#12 with the
        server CA, empty password."""
        a = self.args
        with tempfile.TemporaryDirectory() as tmp:
            with open(os.path.join(tmp, "ext.cnf"), "w") as f:
                f.write(
                    "[ client ]\nbasicConstraints = critical, CA:FALSE\n"
                    "keyUsage = critical, digitalSignature\nextendedKeyUsage = clientAuth\n"
                )
            openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "key.pem", cwd=tmp)
            openssl("req", "-new", "-key", "key.pem", "-subj", "/CN=" + device_id, "-out", "req.csr", cwd=tmp)
            serial = "0x" + os.urandom(16).hex()
            openssl(
                "x509", "-req", "-in", "req.csr", "-CA", os.path.abspath(a.device_ca),
                "-CAkey", os.path.abspath(a.device_ca_key), "-set_serial", serial, "-days", "365",
                "-extfile", "ext.cnf", "-extensions", "client", "-out", "cert.pem", cwd=tmp,
            )
            openssl(
                "pkcs12", "-export", "-passout", "pass:", "-inkey", "key.pem", "-in", "cert.pem",
                "-certfile", os.path.abspath(a.server_ca), "-out", "device.p12", cwd=tmp,
            )
            with open(os.path.join(tmp, "device.p12"), "rb") as f:
                return f.read()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass

    def client_cn(self):
        cert = self.connection.getpeercert() or {}
        for rdn in cert.get("subject", ()):
            for name, value in rdn:
                if name == "commonName":
                    return value
        return None

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def answer(self, status, payload=b"", content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload:
            self.wfile.write(payload)
        return status

    def raw_path(self):
        """The path as the request line sent it. Python's http.server folds
        leading slashes (`//devices` becomes `/devices`, CPython's fix for
        an open redirect); servers that do not merge slashes answer the
        path as sent, and so does this one."""
        parts = self.requestline.split(" ")
        return parts[1] if len(parts) == 3 else self.path

    def handle_one(self, method):
        state = self.server.state
        raw = self.body() if method in ("POST", "PUT") else b""
        self.path = self.raw_path()
        entry = {"method": method, "path": self.path, "cn": self.client_cn()}
        if raw:
            try:
                entry["body"] = json.loads(raw)
            except ValueError:
                # /system_info/config is aktualizr's configuration as text
                try:
                    entry["body_text"] = raw.decode("utf-8")
                except UnicodeDecodeError:
                    entry["body_bytes"] = len(raw)
        try:
            entry["status"] = self.route(state, method, entry)
        except Exception as e:  # a bug of this server: answer 500 and say it in the log
            entry["error"] = "%s: %s" % (type(e).__name__, e)
            entry["status"] = self.answer(500, b"{}")
        state.record(entry)

    def route(self, state, method, entry):
        path = self.path
        body = entry.get("body")
        if method == "POST" and path == "/devices":
            device_id = body.get("deviceId") if isinstance(body, dict) else None
            if not device_id or entry["cn"] is None:
                return self.answer(400, b"{}")
            return self.answer(200, state.device_p12(device_id), "application/x-pkcs12")
        if method == "POST" and path == "/director/ecus":
            if not isinstance(body, dict):
                return self.answer(400, b"{}")
            with state.lock:
                state.ecus[entry["cn"]] = body
            return self.answer(200, b"{}")
        if (method, path) in (
            ("PUT", "/core/installed"),
            ("PUT", "/system_info/network"),
            ("PUT", "/system_info"),
            ("POST", "/system_info/config"),
            ("PUT", "/director/manifest"),
            ("POST", "/events"),
        ):
            return self.answer(200, b"{}")
        if method == "GET" and path == "/director/targets.json":
            return self.answer(200, canonical(state.director_targets(entry["cn"])))
        if method == "GET" and path.startswith("/repo/targets/"):
            if path[len("/repo/targets/"):] == TARGET_NAME:
                return self.answer(200, TARGET_BYTES, "application/octet-stream")
            return self.answer(404, b"{}")
        if method == "GET" and path.startswith("/repo/") and path[len("/repo/"):] in (
            "targets.json",
            "snapshot.json",
            "timestamp.json",
        ):
            return self.answer(200, state.image_repo()[path[len("/repo/"):]])
        for prefix, folder in (("/director/", "director"), ("/repo/", "repo")):
            name = path[len(prefix):]
            if method == "GET" and path.startswith(prefix) and name.endswith(".root.json"):
                number = name[: -len(".root.json")]
                file = os.path.join(state.args.state, folder, number + ".root.json")
                if number.isdigit() and os.path.isfile(file):
                    with open(file, "rb") as f:
                        return self.answer(200, f.read())
                return self.answer(404, b"{}")
        return self.answer(404, b"{}")

    def do_GET(self):
        self.handle_one("GET")

    def do_POST(self):
        self.handle_one("POST")

    def do_PUT(self):
        self.handle_one("PUT")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, state, context):
        super().__init__(address, Handler)
        self.state = state
        self.context = context

    def get_request(self):
        sock, address = self.socket.accept()
        try:
            return self.context.wrap_socket(sock, server_side=True), address
        except (ssl.SSLError, OSError) as e:
            self.state.record({"event": "tls-error", "error": str(e)})
            sock.close()
            raise


def serve(args):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(args.client_ca)
    state = State(args)
    httpd = Server((args.host, args.port), state, context)
    port = httpd.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, args.port_file)
    print("listening on %s:%d" % (args.host, port), flush=True)
    httpd.serve_forever()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_init = sub.add_parser("init")
    p_init.add_argument("state")
    p_serve = sub.add_parser("serve")
    p_serve.add_argument("state")
    for name in ("--cert", "--key", "--client-ca", "--device-ca", "--device-ca-key", "--server-ca", "--log"):
        p_serve.add_argument(name, required=True)
    p_serve.add_argument("--host", default="127.0.0.1")
    p_serve.add_argument("--port", type=int, default=0)
    p_serve.add_argument("--port-file")
    args = parser.parse_args()
    if args.command == "init":
        init(args.state)
    else:
        serve(args)


if __name__ == "__main__":
    sys.exit(main())
