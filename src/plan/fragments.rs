//! aktualizr's config fragments for a method: the method's template from
//! the table in [`crate::plan::methods`], given its variables, rendered and
//! checked; and `40-hardware-id.toml` when a hardware ID is given.

use serde_json::{json, Map};

use crate::aktualizr::ini;
use crate::error::{Error, Result};
use crate::plan::methods::{Value, HARDWARE_ID_TEMPLATE};
use crate::plan::options::{FragmentOptions, HardwareId};
use crate::plan::render::{self, Templates};
use crate::secret::Secret;

/// A rendered fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    /// File name under `usr/lib/sota/conf.d`.
    pub name: String,
    pub text: Secret<String>,
    /// Holds a password or PIN.
    pub secret: bool,
}

/// What the method's fragment gets when aktualizr must not send its
/// configuration to the server ([`FragmentOptions::report_config_off`]).
const REPORT_CONFIG_OFF: &str = "
# aktualizr would otherwise send its whole configuration, passwords and
# PINs included, to the server (sota-stage).
[telemetry]
report_config = false
";

fn fragment_name(template: &str) -> String {
    template.trim_end_matches(".hbs").to_string()
}

/// The method's own fragment (`20-sota-<method>.toml`).
pub fn method_fragment(opts: &FragmentOptions, templates: &Templates) -> Result<Fragment> {
    let spec = opts.method.spec();
    let mut data = Map::new();
    for (name, value) in spec.variables {
        let text = match value {
            Value::DevicePath(path) => format!("/{path}"),
            Value::Text(text) => (*text).to_string(),
            Value::P12Password => opts.p12_password.expose().clone(),
            Value::P11Module => opts.hsm.module.clone(),
            Value::P11Pin => opts.hsm.pin.expose().clone(),
            Value::P11TlsCertId if opts.hsm.cert_from_file => String::new(),
            Value::P11TlsCertId => opts.hsm.tls_cert_id.clone(),
            Value::P11TlsKeyId => opts.hsm.tls_key_id.clone(),
            Value::P11UptaneKeyId => opts.hsm.uptane_key_id.clone(),
            Value::P11CertSource if opts.hsm.cert_from_file => "file".into(),
            Value::P11CertSource => "pkcs11".into(),
            Value::P11ClientCertPath if opts.hsm.cert_from_file => "client.pem".into(),
            Value::P11ClientCertPath => String::new(),
        };
        data.insert((*name).to_string(), text.into());
    }
    let name = fragment_name(spec.template);
    let mut text = render::render(templates, spec.template, &data.into())?;
    if opts.report_config_off() {
        text = with_report_config_off(&name, spec.template, text)?;
    }
    Ok(Fragment {
        name,
        text: Secret::new(text),
        secret: opts.holds_secret(),
    })
}

/// `fragment` with [`REPORT_CONFIG_OFF`] at its end, checked again. A
/// template with a `[telemetry]` section of its own is refused: a second
/// one in the same file stops aktualizr.
fn with_report_config_off(name: &str, template: &str, fragment: String) -> Result<String> {
    let doc = ini::parse(name, &fragment);
    if let Some(section) = doc.sections.iter().find(|s| s.name == "telemetry") {
        return Err(Error::Invalid(format!(
            "template `{template}` has a `[telemetry]` section (line {}), but sota-stage adds `[telemetry] report_config = false` to `{name}`, which holds a password or PIN or is told to; remove the section from the template",
            section.line
        )));
    }
    let text = format!("{fragment}{REPORT_CONFIG_OFF}");
    render::check_fragment(name, &text)?;
    Ok(text)
}

/// `40-hardware-id.toml`.
pub fn hardware_id_fragment(id: &HardwareId, templates: &Templates) -> Result<Fragment> {
    Ok(Fragment {
        name: fragment_name(HARDWARE_ID_TEMPLATE),
        text: Secret::new(render::render(
            templates,
            HARDWARE_ID_TEMPLATE,
            &json!({ "hardware_id": id.as_str() }),
        )?),
        secret: false,
    })
}

/// Every fragment of a run: the method's, then the hardware ID's.
pub fn fragments(opts: &FragmentOptions, templates: &Templates) -> Result<Vec<Fragment>> {
    let mut out = vec![method_fragment(opts, templates)?];
    if let Some(id) = &opts.hardware_id {
        out.push(hardware_id_fragment(id, templates)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::methods::Method;
    use crate::plan::options::{Hsm, ReportConfig};

    fn opts(method: Method, password: &str) -> FragmentOptions {
        FragmentOptions {
            method,
            hardware_id: None,
            p12_password: Secret::new(password.into()),
            hsm: Hsm::default(),
            report_config: ReportConfig::Auto,
        }
    }

    fn reports_config(opts: &FragmentOptions, t: &Templates) -> bool {
        let text = method_fragment(opts, t).expect("render");
        !text.text.expose().contains("report_config = false")
    }

    #[test]
    fn a_fragment_with_a_secret_tells_aktualizr_not_to_send_its_config() {
        let t = Templates::built_in();
        // Auto: off exactly when a password or PIN is in the fragment.
        assert!(!reports_config(&opts(Method::SharedCred, "pw"), &t));
        assert!(!reports_config(&opts(Method::DeviceCredHsm, ""), &t));
        assert!(reports_config(&opts(Method::SharedCred, ""), &t));
        assert!(reports_config(&opts(Method::DeviceCred, "pw"), &t));
        let mut no_pin = opts(Method::DeviceCredHsm, "");
        no_pin.hsm.pin = Secret::new(String::new());
        assert!(reports_config(&no_pin, &t));
        // On: never written; off: always.
        for method in Method::ALL {
            let mut o = opts(method, "pw");
            o.report_config = ReportConfig::On;
            assert!(reports_config(&o, &t), "{method}");
            o.report_config = ReportConfig::Off;
            o.p12_password = Secret::new(String::new());
            assert!(!reports_config(&o, &t), "{method}");
        }
        let f = method_fragment(&opts(Method::DeviceCredHsm, ""), &t).expect("render");
        assert!(f
            .text
            .expose()
            .ends_with("\n\n# aktualizr would otherwise send its whole configuration, passwords and\n# PINs included, to the server (sota-stage).\n[telemetry]\nreport_config = false\n"));
    }

    #[test]
    fn a_template_with_its_own_telemetry_section_is_refused_when_one_is_added() {
        let t = Templates::with_overrides([(
            "20-sota-shared-cred.toml.hbs".to_string(),
            "dir/20-sota-shared-cred.toml.hbs".to_string(),
            "[provision]\nprovision_path = {{path provision_path}}\n[telemetry]\nreport_network = false\n".to_string(),
        )])
        .expect("known name");
        assert!(reports_config(&opts(Method::SharedCred, ""), &t));
        let e = method_fragment(&opts(Method::SharedCred, "pw"), &t).expect_err("two sections");
        assert!(
            e.to_string()
                .contains("has a `[telemetry]` section (line 3)"),
            "{e}"
        );
    }

    #[test]
    fn a_fragment_is_secret_when_it_holds_a_password_or_pin() {
        let t = Templates::built_in();
        let shared = method_fragment(&opts(Method::SharedCred, ""), &t).expect("render");
        assert_eq!(shared.name, "20-sota-shared-cred.toml");
        assert!(!shared.secret);
        assert!(
            method_fragment(&opts(Method::SharedCred, "pw"), &t)
                .expect("render")
                .secret
        );
        assert!(
            !method_fragment(&opts(Method::DeviceCred, "pw"), &t)
                .expect("render")
                .secret
        );
        assert!(
            method_fragment(&opts(Method::DeviceCredHsm, ""), &t)
                .expect("render")
                .secret
        );
    }

    #[test]
    fn an_override_replaces_its_template_only() {
        let t = Templates::with_overrides([(
            "40-hardware-id.toml.hbs".to_string(),
            "dir/40-hardware-id.toml.hbs".to_string(),
            "[provision]\nprimary_ecu_hardware_id = {{str hardware_id}}\n# custom\n".to_string(),
        )])
        .expect("known name");
        let id = HardwareId::parse("board").expect("valid");
        let f = hardware_id_fragment(&id, &t).expect("render");
        assert!(f.text.expose().ends_with("# custom\n"));
        let unknown = Templates::with_overrides([(
            "40-hardware-ids.toml.hbs".to_string(),
            "dir/40-hardware-ids.toml.hbs".to_string(),
            String::new(),
        )]);
        assert!(unknown
            .expect_err("typo")
            .contains("not a template sota-stage knows"));
    }
}
