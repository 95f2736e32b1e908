//! Where bytes are: a [`Place`] (a path below the scanned root and the
//! chain of members inside it) and the level being read ([`Cx`]).

use crate::audit::decode::Codec;
use crate::audit::patterns::{DEVICE_ZIP, SHARED_P12};

/// What a name that holds a secret is shown as.
pub const REDACTED: &str = "[name redacted]";

/// Where some bytes are: a path below the scanned root, and the chain of
/// members inside it (`a.tar.gz!b.deb!data.tar.xz!c`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub path: String,
    pub member: Option<String>,
}

impl Place {
    pub fn file(path: String) -> Place {
        Place { path, member: None }
    }

    pub(super) fn inner(&self, name: &str) -> Place {
        Place {
            path: self.path.clone(),
            member: Some(match &self.member {
                Some(m) => format!("{m}!{name}"),
                None => name.to_owned(),
            }),
        }
    }

    /// Whether the shared provisioning p12 may be here: the device zip
    /// itself (its raw bytes hold the p12 when stored) or its member, at
    /// its place in a root file system: the root's, or one inside an image
    /// or archive (`image.wic!p2(ext)!var/sota/...`, an OSTree commit's
    /// `REV!/var/sota/...`).
    pub fn is_device_zip(&self) -> bool {
        let chain = match &self.member {
            Some(m) => format!("{}!{m}", self.path),
            None => self.path.clone(),
        };
        let zip = |s: &str| {
            s == DEVICE_ZIP
                || s.ends_with(&format!("!{DEVICE_ZIP}"))
                || s.ends_with(&format!("!/{DEVICE_ZIP}"))
        };
        zip(&chain)
            || chain
                .strip_suffix(&format!("!{SHARED_P12}"))
                .is_some_and(zip)
    }
}

/// A level being looked at: where it is, how deep, whether its archive's
/// members are the root's files, and the name of a compressed stream's
/// content (shown only when the content is not an archive: an archive's
/// members name themselves, `a.tar.gz!etc/x`).
#[derive(Debug, Clone)]
pub(super) struct Cx {
    pub(super) place: Place,
    pub(super) depth: usize,
    pub(super) root: bool,
    pub(super) label: Option<String>,
}

impl Cx {
    /// The top level of a file at `place`; `root`: a file given as the
    /// root, whose archive's members are the root's files.
    pub(super) fn top(place: &Place, root: bool) -> Cx {
        Cx {
            place: place.clone(),
            depth: 0,
            root,
            label: None,
        }
    }

    /// Where plain content at this level is.
    pub(super) fn content(&self) -> Place {
        match &self.label {
            Some(label) => self.place.inner(label),
            None => self.place.clone(),
        }
    }

    /// A member of an archive at this level.
    pub(super) fn member(&self, name: &str) -> Cx {
        Cx {
            place: if self.root {
                Place::file(name.to_owned())
            } else {
                self.place.inner(name)
            },
            depth: self.depth + 1,
            root: false,
            label: None,
        }
    }

    /// The decoded content of a compressed stream at this level.
    pub(super) fn decoded(&self, codec: Codec) -> Cx {
        Cx {
            place: self.content(),
            depth: self.depth + 1,
            root: self.root,
            label: Some(format!("({} content)", codec.name())),
        }
    }
}
