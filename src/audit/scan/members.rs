//! An archive's members as levels of their own: each member's name
//! (searched, shown redacted), its mode, its data; rpm's payload; zips
//! read in memory or member by member.

use std::io::{self, Read};
use std::sync::Arc;

use crate::audit::decode::{self, Codec};
use crate::audit::findings::mode_finding;
use crate::audit::formats::{self, EntryKind, Format, Header, Members};
use crate::audit::patterns::Kind;

use super::budget::{Budgeted, Stop};
use super::place::{Cx, Place};
use super::scanner::{redact, Scanner};
use super::stream::{Tee, Window};

impl<'a> Scanner<'a> {
    /// A streamed archive (tar, cpio, ar, rpm): its raw bytes searched as
    /// the reader reads them, each member a level of its own.
    pub(super) fn archive(
        &mut self,
        cx: &Cx,
        format: Format,
        tee: &mut Tee<'_, '_, '_>,
    ) -> io::Result<()> {
        let result = match format {
            Format::Tar => self.members(cx, &mut formats::Tar::new(&mut *tee)),
            Format::Cpio => self.members(cx, &mut formats::Cpio::new(&mut *tee)),
            Format::Ar => self.members(cx, &mut formats::Ar::new(&mut *tee)),
            Format::Rpm => self.rpm(cx, &mut *tee),
            Format::Zip => Ok(()),
        };
        let what = format!("{} archive", format.name());
        if let Err(e) = result {
            tee.upstream()?;
            if Stop::OverBudget.is(&e) {
                self.over_budget(&cx.place);
            } else {
                let place = cx.place.clone();
                self.cut_short(
                    cx,
                    &place,
                    format!("is a {what} that cannot be read past this point ({e}): the rest was searched as raw bytes"),
                );
            }
        }
        tee.drain()
    }

    /// An rpm's payload: a compressed cpio archive.
    pub(super) fn rpm(&mut self, cx: &Cx, tee: &mut dyn Read) -> io::Result<()> {
        let (compressor, mut payload) = formats::rpm::payload(tee)?;
        let inner = Cx {
            place: cx.place.clone(),
            depth: cx.depth + 1,
            root: cx.root,
            label: Some("(rpm payload)".to_owned()),
        };
        if compressor == "lzma" {
            // The one compression without a magic.
            let buf = self.buffer();
            let mut win = Window::new(self.needles, buf, None);
            let marks = (self.findings.len(), self.reported.len());
            let result =
                self.compressed(&inner, Codec::Lzma, &mut Tee::new(&mut win, &mut payload));
            let (found, digest, buf) = win.finish();
            self.give_back(buf);
            result?;
            self.close(&inner.place, marks, found, digest);
            return Ok(());
        }
        self.stream(&inner, &mut payload, None)
    }

    /// Every member of an archive: its name (and link target, xattrs)
    /// searched, its data a level of its own.
    pub(super) fn members(&mut self, cx: &Cx, archive: &mut dyn Members) -> io::Result<()> {
        let mut count = 0usize;
        while let Some(header) = archive.next_member()? {
            count += 1;
            if count > self.limits.members {
                self.not_searched(
                    &cx.place,
                    format!(
                        "holds more than {} members: the rest were searched as raw bytes only",
                        self.limits.members
                    ),
                );
                return Ok(());
            }
            let name = self.shown_name(cx, &header);
            let member = cx.member(&name);
            let is_file = header.kind == EntryKind::File;
            if cx.root {
                if is_file || header.kind == EntryKind::Dir {
                    if let Some(f) = header
                        .mode
                        .and_then(|mode| mode_finding(&name, header.kind == EntryKind::Dir, mode))
                    {
                        self.findings.push(f);
                    }
                }
                if is_file {
                    self.files += 1;
                    if self.files > self.limits.files {
                        self.not_searched(
                            &cx.place,
                            format!(
                                "holds more than {} files: the rest were not searched",
                                self.limits.files
                            ),
                        );
                        return Ok(());
                    }
                    self.start_file(false);
                }
            }
            if header.size > 0 && header.kind != EntryKind::Dir {
                self.stream(&member, archive.data(), Some(header.size))?;
            }
        }
        Ok(())
    }

    /// A member's name as shown: normalised, with every part that holds a
    /// secret redacted (and a finding for it); its link target and
    /// extended attributes searched too.
    pub(super) fn shown_name(&mut self, cx: &Cx, header: &Header) -> String {
        let (name, found) = redact(self.needles, &header.name);
        let place = cx.member(&name).place;
        if !found.is_empty() {
            self.report_name(&place, &found, "its name");
        }
        if let Some(link) = &header.link {
            let mut found = Vec::new();
            self.needles.search(link, &mut found);
            if !found.is_empty() {
                self.report_name(&place, &found, "its link target");
            }
        }
        for (key, value) in &header.xattrs {
            let mut found = Vec::new();
            self.needles.search(key, &mut found);
            self.needles.search(value, &mut found);
            if !found.is_empty() {
                self.report_name(&place, &found, "an extended attribute");
            }
        }
        name
    }

    /// A secret in a name, a link target or an extended attribute.
    pub fn report_name(&mut self, place: &Place, found: &[usize], what: &str) {
        for &n in found {
            let needle = &self.needles.needles[n];
            if needle.in_device_zip || needle.kind == Kind::PrivateKey {
                continue;
            }
            let (kind, severity) = (needle.kind, needle.severity);
            let message = format!(
                "{what} holds {}: a host secret, never for a device; rename it or remove it from the recipe that installs it",
                needle.what
            );
            self.finding(place, kind, severity, message);
        }
    }

    /// A zip met in a stream: read into memory (within the cap and the
    /// memory budget), then looked into.
    pub(super) fn zip_stream(
        &mut self,
        cx: &Cx,
        tee: &mut Tee<'_, '_, '_>,
        size: Option<u64>,
    ) -> io::Result<()> {
        let cap = self.memory_cap();
        let Some(data) = tee.hold(size, cap)? else {
            self.not_searched(
                &cx.place,
                format!(
                    "is a zip archive larger than {cap} bytes: its raw bytes were searched, its members were not looked into"
                ),
            );
            return tee.drain();
        };
        // The raw bytes were searched by the window as they passed.
        self.zip_in_memory(cx, &data)
    }

    /// The members of a zip held in memory, counted in the memory budget
    /// while they are read (its raw bytes are the caller's window's).
    pub(super) fn zip_in_memory(&mut self, cx: &Cx, data: &[u8]) -> io::Result<()> {
        self.memory += data.len() as u64;
        let result = self.zip_members_only(cx, data);
        self.memory -= data.len() as u64;
        result
    }

    /// Each member of a zip in memory, by its local header (the method
    /// unzip uses); a local header pointed at by many central entries is
    /// read once.
    pub(super) fn zip_members_only(&mut self, cx: &Cx, data: &[u8]) -> io::Result<()> {
        let mut members = formats::zip::members(data, self.limits.members);
        if members.unreadable > 0 {
            self.not_searched(
                &cx.place,
                format!(
                    "is a zip archive whose central directory names {} that cannot be found: they were searched as raw bytes only",
                    crate::report::counted(members.unreadable as u64, "member", "members")
                ),
            );
        }
        for member in members.by_ref() {
            let header = Header {
                name: member.name.clone(),
                kind: if member.name.ends_with(b"/") {
                    EntryKind::Dir
                } else {
                    EntryKind::File
                },
                link: None,
                mode: None,
                size: member.size.unwrap_or(0),
                xattrs: Vec::new(),
            };
            let name = self.shown_name(cx, &header);
            let inner = cx.member(&name);
            if header.kind == EntryKind::Dir || member.data.is_empty() {
                continue;
            }
            if cx.root {
                self.files += 1;
                self.start_file(false);
            }
            if member.encrypted {
                self.not_searched(
                    &inner.place,
                    "not searched: the member is encrypted (its raw bytes were searched)".into(),
                );
                continue;
            }
            let codec = match member.method {
                0 => None,
                8 => Some(Codec::Deflate),
                12 => Some(Codec::Bzip2),
                93 => Some(Codec::Zstd),
                95 => Some(Codec::Xz),
                other => {
                    self.not_searched(
                        &inner.place,
                        format!("not searched: the member is compressed with method {other}, which the audit does not read (its raw bytes were searched)"),
                    );
                    continue;
                }
            };
            let mut raw: &[u8] = match (codec, member.size) {
                (None, Some(size)) => member
                    .data
                    .get(..usize::try_from(size).unwrap_or(usize::MAX))
                    .unwrap_or(member.data),
                _ => member.data,
            };
            let Some(codec) = codec else {
                let len = raw.len() as u64;
                self.stream(&inner, &mut raw, Some(len))?;
                continue;
            };
            let limit = self
                .limits
                .memory
                .saturating_sub(self.memory)
                .min(self.limits.dictionary);
            match decode::open(codec, Box::new(raw), limit) {
                Err(refused) => self.not_searched(
                    &inner.place,
                    format!("not searched: {} (its raw bytes were searched)", refused.0),
                ),
                Ok(decoder) => {
                    let held = decoder.memory();
                    self.memory += held;
                    let mut out = Budgeted {
                        inner: decoder,
                        file: Some(Arc::clone(&self.left)),
                        shared: self.shared,
                        run_bytes: self.limits.run_bytes,
                    };
                    let result = self.stream(&inner, &mut out, member.size);
                    drop(out);
                    self.memory -= held;
                    if let Err(e) = result {
                        let inner = Cx {
                            label: None,
                            ..inner
                        };
                        self.decode_error(&inner, codec, &e);
                    }
                }
            }
        }
        if members.more {
            self.not_searched(
                &cx.place,
                format!(
                    "is a zip archive of more than {} members: the rest were searched as raw bytes only",
                    self.limits.members
                ),
            );
        }
        Ok(())
    }
}
