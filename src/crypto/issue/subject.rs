//! A device's subject: the id checked (`check_device_id`), the optional
//! attributes (`SubjectExtra`), the DER name.

use der::asn1::{Any, PrintableStringRef, SetOfVec, Utf8StringRef};
use der::oid::db::rfc4519::{
    COMMON_NAME, COUNTRY_NAME, ORGANIZATIONAL_UNIT_NAME, ORGANIZATION_NAME, ST,
};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

use super::error::{build, IssueError};

/// The longest device id: a CN may be 64 characters (RFC 5280 ub-common-name).
pub const MAX_ID_LEN: usize = 64;

/// The optional subject attributes every device certificate gets besides
/// its CN.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectExtra {
    /// Two letters (ISO 3166), checked by [`SubjectExtra::check`].
    pub country: Option<String>,
    pub state: Option<String>,
    pub organization: Option<String>,
    pub unit: Option<String>,
}

impl SubjectExtra {
    /// The attributes' values, checked: C two ASCII letters, the others
    /// 1 to 64 characters without control characters. Returns which one is
    /// wrong and why.
    pub fn check(&self) -> Result<(), (SubjectPart, String)> {
        if let Some(c) = &self.country {
            if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err((
                    SubjectPart::Country,
                    "must be two letters (ISO 3166)".into(),
                ));
            }
        }
        for (part, value) in [
            (SubjectPart::State, &self.state),
            (SubjectPart::Organization, &self.organization),
            (SubjectPart::Unit, &self.unit),
        ] {
            let Some(value) = value else { continue };
            let chars = value.chars().count();
            if chars == 0 || chars > 64 {
                return Err((part, "must be 1 to 64 characters".into()));
            }
            if value.chars().any(char::is_control) {
                return Err((part, "must not hold control characters".into()));
            }
        }
        Ok(())
    }
}

/// One attribute of [`SubjectExtra`], for the command line's wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectPart {
    Country,
    State,
    Organization,
    Unit,
}

/// `C, ST, O, OU, CN`, most general first as in DER; C as a
/// PrintableString (RFC 5280 appendix A), the others as UTF8String.
pub(super) fn subject(id: &str, extra: &SubjectExtra) -> Result<Name, IssueError> {
    let mut rdns = Vec::new();
    let mut push = |oid, value: Any| -> Result<(), IssueError> {
        let set = SetOfVec::try_from(vec![AttributeTypeAndValue { oid, value }]).map_err(build)?;
        rdns.push(RelativeDistinguishedName(set));
        Ok(())
    };
    if let Some(c) = &extra.country {
        let c = c.to_ascii_uppercase();
        push(
            COUNTRY_NAME,
            Any::from(PrintableStringRef::new(&c).map_err(build)?),
        )?;
    }
    for (oid, value) in [
        (ST, &extra.state),
        (ORGANIZATION_NAME, &extra.organization),
        (ORGANIZATIONAL_UNIT_NAME, &extra.unit),
        (COMMON_NAME, &Some(id.to_string())),
    ] {
        if let Some(value) = value {
            push(oid, Any::from(Utf8StringRef::new(value).map_err(build)?))?;
        }
    }
    Ok(RdnSequence(rdns))
}

/// Whether `id` may be a device id: 1 to 64 characters of `[A-Za-z0-9._-]`,
/// not starting with `.` (it names a folder and a CN). The reason when not.
pub fn check_device_id(id: &str) -> Result<(), &'static str> {
    if id.is_empty() {
        return Err("it is empty");
    }
    if id.len() > MAX_ID_LEN {
        return Err("it is longer than 64 characters");
    }
    if id.starts_with('.') {
        return Err("it starts with `.`");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err("it holds a character outside [A-Za-z0-9._-]");
    }
    Ok(())
}
