//! A CA's nameConstraints (RFC 5280 4.2.1.10) applied to a device
//! certificate's subject ([`permits`]): the only name a device certificate
//! of this tool carries is its subject, a directoryName, so only the
//! directoryName subtrees matter (a device certificate has no
//! subjectAltName and no emailAddress attribute).
//!
//! A name is within a directoryName subtree when the subtree's RDNs are
//! the first RDNs of the name (RFC 5280 7.1). Attribute values are
//! compared as OpenSSL compares them: strings case-folded (ASCII) with
//! runs of blanks collapsed and blanks at either end dropped, whatever
//! string type holds them; anything else byte for byte.

use der::asn1::{Any, AnyRef, Ia5StringRef};
use der::{Encode, Tag, Tagged};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::ext::pkix::name::{DirectoryString, GeneralName};
use x509_cert::ext::pkix::NameConstraints;
use x509_cert::name::{Name, RelativeDistinguishedName};

/// Whether `nc` allows `name`; what forbids it when not.
pub fn permits(nc: &NameConstraints, name: &Name) -> Result<(), String> {
    for subtree in nc.excluded_subtrees.iter().flatten() {
        if let GeneralName::DirectoryName(base) = &subtree.base {
            if within(name, base) {
                return Err(format!(
                    "nameConstraints exclude the subtree `{base}`, which holds the device subject"
                ));
            }
        }
    }
    let permitted: Vec<&Name> = nc
        .permitted_subtrees
        .iter()
        .flatten()
        .filter_map(|s| match &s.base {
            GeneralName::DirectoryName(base) => Some(base),
            _ => None,
        })
        .collect();
    if !permitted.is_empty() && !permitted.iter().any(|base| within(name, base)) {
        let list: Vec<String> = permitted.iter().map(|b| format!("`{b}`")).collect();
        return Err(format!(
            "nameConstraints permit only the subtrees {}, which do not hold the device subject",
            list.join(", ")
        ));
    }
    Ok(())
}

/// Whether `name` is `base` or below it.
fn within(name: &Name, base: &Name) -> bool {
    base.0.len() <= name.0.len() && base.0.iter().zip(&name.0).all(|(b, n)| same_rdn(b, n))
}

fn same_rdn(a: &RelativeDistinguishedName, b: &RelativeDistinguishedName) -> bool {
    a.0.len() == b.0.len() && a.0.iter().all(|x| b.0.iter().any(|y| same_atv(x, y)))
}

fn same_atv(a: &AttributeTypeAndValue, b: &AttributeTypeAndValue) -> bool {
    if a.oid != b.oid {
        return false;
    }
    match (canonical(&a.value), canonical(&b.value)) {
        (Some(x), Some(y)) => x == y,
        _ => a.value == b.value,
    }
}

/// A string value, case-folded with its blanks collapsed; `None` for a
/// value that is not a string.
fn canonical(value: &Any) -> Option<String> {
    let text = if value.tag() == Tag::Ia5String {
        Ia5StringRef::try_from(AnyRef::from(value))
            .ok()?
            .to_string()
    } else {
        let der = value.to_der().ok()?;
        match <DirectoryString as der::Decode>::from_der(&der).ok()? {
            DirectoryString::PrintableString(s) => s.to_string(),
            DirectoryString::TeletexString(s) => s.to_string(),
            DirectoryString::Utf8String(s) => s,
        }
    };
    let folded = text.to_ascii_lowercase();
    Some(folded.split_whitespace().collect::<Vec<_>>().join(" "))
}
