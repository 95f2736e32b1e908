//! A device URL that ends with `/` (issue 19, section 2, defect 1):
//! aktualizr appends `/devices`, `/director/ecus` to it as it is, so a
//! final `/` makes every path start with `//`, which a strict server
//! answers with 404. `stage` writes the URL without it everywhere the
//! device reads it (the provisioning zip's `autoprov.url`, `gateway.url`),
//! and `inspect` says so; a URL without one is staged byte for byte.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use common::*;

/// Name -> bytes of every entry of the zip at `path`.
fn zip_entries(path: &Path) -> BTreeMap<String, Vec<u8>> {
    staged::zip_entries(&fs::read(path).unwrap())
}

fn stage(zip: &Path, method: &str, dev: &Path) -> Run {
    staged::stage_device_cmd(zip, method, dev).run()
}

#[test]
fn the_final_slash_of_the_device_url_is_not_staged() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let cases = [
        ("https://gw.example.test/\n", "https://gw.example.test"),
        (
            "https://gw.example.test:8443//",
            "https://gw.example.test:8443",
        ),
        (
            "https://gw.example.test/api/v3/",
            "https://gw.example.test/api/v3",
        ),
    ];
    for (i, (given, staged)) in cases.iter().enumerate() {
        let zip = Creds::typical(&pki)
            .url(given)
            .write_to(&dir, &format!("c{i}.zip"));
        let shared = dir.join(format!("shared-{i}"));
        stage(&zip, "shared-cred", &shared).success();
        let entries = zip_entries(&shared.join("var/sota/sota_provisioning_credentials.zip"));
        assert_eq!(
            String::from_utf8_lossy(&entries["autoprov.url"]),
            *staged,
            "{given:?}"
        );
        let device = dir.join(format!("device-{i}"));
        stage(&zip, "device-cred", &device).success();
        assert_eq!(
            fs::read_to_string(device.join("var/sota/import/gateway.url")).unwrap(),
            *staged,
            "{given:?}"
        );
        // The fragments name the file the URL is in, never the URL.
        for root in [&shared, &device] {
            for f in fs::read_dir(root.join("usr/lib/sota/conf.d")).unwrap() {
                let text = fs::read_to_string(f.unwrap().path()).unwrap();
                assert!(!text.contains("gw.example.test"), "{text}");
            }
        }
        // device-certs bundles get gateway.url from the same plan.
        let out = dir.join(format!("bundles-{i}"));
        sota(["device-certs", "--fleet-ca"])
            .arg(&pki.ca().cert)
            .arg("--fleet-ca-key")
            .arg(&pki.ca().key)
            .arg("--credentials")
            .arg(&zip)
            .args(["--device-id", "car-1", "--out"])
            .arg(&out)
            .run()
            .success();
        assert_eq!(
            fs::read_to_string(out.join("car-1/var/sota/import/gateway.url")).unwrap(),
            *staged
        );
    }
}

#[test]
fn a_url_without_a_final_slash_is_staged_as_it_is() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let given = "  https://gw.example.test/api\r\n";
    let zip = Creds::typical(&pki).url(given).write_to(&dir, "c.zip");
    let dev = dir.join("image");
    stage(&zip, "shared-cred", &dev).success();
    let entries = zip_entries(&dev.join("var/sota/sota_provisioning_credentials.zip"));
    assert_eq!(entries["autoprov.url"], given.as_bytes());
}

#[test]
fn inspect_says_the_final_slash_is_left_out() {
    let dir = TestDir::new();
    let pki = Pki::new(&dir);
    let zip = Creds::typical(&pki)
        .url("https://gw.example.test/")
        .write_to(&dir, "c.zip");
    let run = sota(["inspect"]).arg(&zip).run();
    run.success()
        .stdout_has(
            "note: ends with `/`, which aktualizr would turn into `//devices` and `//director` (a server that does not merge slashes answers 404); stage writes it as `https://gw.example.test`\n",
        )
        .stdout_has("result: ok, 0 errors, 0 warnings");
    let json = sota(["inspect", "--format", "json"]).arg(&zip).run();
    json.success().stdout_has("\"label\": \"note\"");
}
