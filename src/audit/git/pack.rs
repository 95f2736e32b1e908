//! A pack file (gitformat-pack): read entry by entry from its start, each
//! entry's zlib stream inflated to its declared size (the stream's end is
//! where the next entry starts), deltas applied on their bases.
//!
//! - The `.idx` (version 2) is read when it is there and well formed: ids
//!   sorted, every offset inside the pack. It finds REF_DELTA bases, names
//!   an object that is not read (over the size cap, damaged) and lets the
//!   walk go on past a damaged entry (at the next offset it lists). Without
//!   it the walk still reads everything: REF_DELTA bases are found among
//!   the entries already read (their computed ids), the loose objects, or,
//!   for a base later in the pack, once the walk has reached the end.
//! - Bases come from an LRU cache of inflated objects keyed by pack offset
//!   ([`Limits::base_cache`] bytes). A base that is not there is read again
//!   from the pack by its offset, down its own chain, iteratively: at most
//!   [`Limits::delta_depth`] links, each offset once (a cycle, which only a
//!   REF_DELTA through a forged `.idx` can make, is an error).
//! - Every allocation is within [`Limits::object_bytes`] (an object, a
//!   delta), every inflated byte counts towards [`Limits::inflated_bytes`],
//!   every entry towards [`Limits::objects`]; a header varint is at most 10
//!   bytes; the walk moves forward at every entry and stops at the pack's
//!   end.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io;
use std::path::Path;
use std::rc::Rc;

use miniz_oxide::inflate::stream::{inflate, InflateState};
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

use super::common::{object_id, Budget, Kind, Limits, Skipped};
use super::idx::Idx;
use super::window::{Via, Windows};
use super::{delta, loose};
use crate::audit::source::{FileAt, ReadAt};

fn damaged(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("git pack: {what}"))
}

/// What an entry's header needs of the window.
const HEADER_MAX: usize = 32;
/// What inflating one stream costs of [`Limits::inflated_bytes`] at least.
pub(super) const STREAM_COST: u64 = 256;

/// Where a delta's base is.
#[derive(Debug, Clone, Copy)]
enum Base {
    Offset(u64),
    Id([u8; 20]),
}

#[derive(Debug, Clone, Copy)]
enum What {
    Whole(Kind),
    Delta(Base),
}

/// An entry's header.
#[derive(Debug, Clone, Copy)]
struct Entry {
    what: What,
    /// The inflated size of its data (an object, or a delta).
    size: u64,
    /// Where its zlib stream starts.
    data: u64,
}

/// Inflated objects by pack offset, least recently used out first.
struct Cache {
    map: HashMap<u64, (Kind, Rc<Vec<u8>>, u64)>,
    order: BTreeMap<u64, u64>,
    bytes: u64,
    cap: u64,
    clock: u64,
}

impl Cache {
    fn new(cap: u64) -> Cache {
        Cache {
            map: HashMap::new(),
            order: BTreeMap::new(),
            bytes: 0,
            cap,
            clock: 0,
        }
    }

    fn get(&mut self, offset: u64) -> Option<(Kind, Rc<Vec<u8>>)> {
        self.clock += 1;
        let clock = self.clock;
        let (kind, data, stamp) = self.map.get_mut(&offset)?;
        self.order.remove(stamp);
        *stamp = clock;
        self.order.insert(clock, offset);
        Some((*kind, data.clone()))
    }

    fn put(&mut self, offset: u64, kind: Kind, data: Rc<Vec<u8>>) {
        let size = data.len() as u64;
        if size > self.cap || self.map.contains_key(&offset) {
            return;
        }
        while self.bytes + size > self.cap {
            let Some((&stamp, &old)) = self.order.iter().next() else {
                break;
            };
            self.order.remove(&stamp);
            if let Some((_, d, _)) = self.map.remove(&old) {
                self.bytes -= d.len() as u64;
            }
        }
        self.clock += 1;
        self.order.insert(self.clock, offset);
        self.map.insert(offset, (kind, data, self.clock));
        self.bytes += size;
    }
}

/// What the walk gives for one entry.
pub(super) enum Step {
    Object {
        id: [u8; 20],
        kind: Kind,
        data: Vec<u8>,
    },
    Skipped(Skipped),
}

/// One pack being read.
pub(super) struct Pack {
    name: String,
    windows: Windows,
    count: u32,
    idx: Option<Idx>,
    /// Ids computed by the walk, for REF_DELTA bases (without an `.idx`).
    found: HashMap<[u8; 20], u64>,
    cache: Cache,
    state: Box<InflateState>,
    pos: u64,
    left: u32,
    ended: bool,
    /// REF_DELTA entries whose base was not known yet (no `.idx`), by
    /// the base's id; read once the walk has ended, when it is found.
    waiting: HashMap<[u8; 20], Vec<u64>>,
    waiting_count: u64,
    /// Entries of `waiting` whose base has been read since.
    ready: Vec<u64>,
}

impl Pack {
    /// Opens `path` (named `name` in messages) and its `.idx`; `Err` when
    /// it is not a pack of version 2 or 3.
    pub(super) fn open(path: &Path, name: String, limits: &Limits) -> io::Result<Pack> {
        let file = File::open(path)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(damaged("not a regular file"));
        }
        let len = meta.len();
        let mut head = [0u8; 12];
        (FileAt { file: &file, len })
            .read_exact_at(&mut head, 0)
            .map_err(|_| damaged("shorter than its header"))?;
        let (magic, rest) = head.split_at(4);
        let (version, count) = rest.split_at(4);
        if magic != b"PACK" {
            return Err(damaged("no pack signature"));
        }
        if version != [0, 0, 0, 2] && version != [0, 0, 0, 3] {
            return Err(damaged("not version 2 or 3"));
        }
        let count = u32::from_be_bytes([count[0], count[1], count[2], count[3]]);
        let idx = Idx::read(&path.with_extension("idx"), len, limits);
        Ok(Pack {
            name,
            windows: Windows::new(file, len),
            count,
            idx,
            found: HashMap::new(),
            cache: Cache::new(limits.base_cache),
            state: InflateState::new_boxed(DataFormat::Raw),
            pos: 12,
            left: count,
            ended: false,
            waiting: HashMap::new(),
            waiting_count: 0,
            ready: Vec::new(),
        })
    }

    /// Whether the pack came with a usable `.idx`.
    #[allow(dead_code)] // the tests' check
    pub(super) fn has_idx(&self) -> bool {
        self.idx.is_some()
    }

    fn skipped(&self, offset: u64, why: String) -> Skipped {
        Skipped {
            id: self.idx.as_ref().and_then(|i| i.id_at(offset)),
            place: format!("{} at offset {offset}", self.name),
            why,
        }
    }

    /// The entry header at `offset`.
    fn entry(&mut self, via: Via, offset: u64) -> io::Result<Entry> {
        let head = self.windows.at(via, offset, HEADER_MAX)?;
        let mut bytes = head.iter().copied();
        let mut next = || {
            bytes
                .next()
                .ok_or_else(|| damaged("an entry header ends early"))
        };
        let mut used = 1u64;
        let mut b = next()?;
        let kind = (b >> 4) & 7;
        let mut size = u64::from(b & 0x0f);
        let mut shift = 4;
        while b & 0x80 != 0 {
            if shift > 53 {
                return Err(damaged("an entry size is too large"));
            }
            b = next()?;
            used += 1;
            size |= u64::from(b & 0x7f) << shift;
            shift += 7;
        }
        let what = match kind {
            1 => What::Whole(Kind::Commit),
            2 => What::Whole(Kind::Tree),
            3 => What::Whole(Kind::Blob),
            4 => What::Whole(Kind::Tag),
            6 => {
                b = next()?;
                used += 1;
                let mut back = u64::from(b & 0x7f);
                while b & 0x80 != 0 {
                    if back > (u64::MAX >> 7) - 1 {
                        return Err(damaged("a delta base offset is too large"));
                    }
                    b = next()?;
                    used += 1;
                    back = ((back + 1) << 7) | u64::from(b & 0x7f);
                }
                let base = offset
                    .checked_sub(back)
                    .filter(|&o| o >= 12 && back > 0)
                    .ok_or_else(|| damaged("a delta base offset is outside the pack"))?;
                What::Delta(Base::Offset(base))
            }
            7 => {
                let mut id = [0u8; 20];
                for byte in &mut id {
                    *byte = next()?;
                }
                used += 20;
                What::Delta(Base::Id(id))
            }
            _ => return Err(damaged("an entry of an unknown type")),
        };
        Ok(Entry {
            what,
            size,
            data: offset + used,
        })
    }

    /// Inflates the zlib stream at `start` into `size` bytes (`Some`), or
    /// into nothing (`None`: only to find its end); the bytes and where
    /// the stream ends.
    fn inflate(
        &mut self,
        via: Via,
        start: u64,
        size: Option<u64>,
        budget: &mut Budget,
    ) -> io::Result<(Vec<u8>, u64)> {
        let head = self.windows.at(via, start, 2)?;
        match head {
            [cmf, flg, ..]
                if cmf & 0x0f == 8
                    && cmf >> 4 <= 7
                    && flg & 0x20 == 0
                    && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0 => {}
            _ => return Err(damaged("an entry's data is not a zlib stream")),
        }
        // One byte more than declared, to see a stream that is longer;
        // grown as it fills, so that a size in a forged header costs
        // nothing until the data is there.
        const STEP: usize = 64 * 1024;
        let (full, keep) = match size {
            Some(n) => {
                let n = usize::try_from(n).map_err(|_| damaged("an entry is too large"))?;
                (n.saturating_add(1), true)
            }
            None => (STEP, false),
        };
        let mut out = vec![0u8; full.min(STEP)];
        // Every stream costs some budget, however little it holds: a chain
        // of tiny deltas read again and again is work too.
        budget.spend(STREAM_COST)?;
        self.state.reset(DataFormat::Raw);
        let mut pos = start + 2;
        let mut written = 0usize;
        loop {
            let data = self.windows.at(via, pos, 1)?;
            if data.is_empty() {
                return Err(damaged("an entry's data ends early"));
            }
            if written == out.len() && out.len() < full {
                out.resize(out.len().saturating_mul(2).min(full), 0);
            }
            let room = out.get_mut(written..).unwrap_or_default();
            let r = inflate(&mut self.state, data, room, MZFlush::None);
            pos += r.bytes_consumed as u64;
            budget.spend(r.bytes_written as u64)?;
            if keep {
                written += r.bytes_written;
            }
            let progress = r.bytes_consumed > 0 || r.bytes_written > 0;
            match r.status {
                Ok(MZStatus::StreamEnd) => break,
                Ok(_) | Err(MZError::Buf) if progress => {}
                _ => return Err(damaged("an entry's data is not valid deflate")),
            }
            if let Some(n) = size {
                if written as u64 > n {
                    return Err(damaged("an entry is larger than its header says"));
                }
            }
        }
        if let Some(n) = size {
            if written as u64 != n {
                return Err(damaged("an entry is smaller than its header says"));
            }
        }
        out.truncate(written);
        // The Adler-32 after the stream is not checked.
        Ok((out, pos + 4))
    }

    /// Where the object `id` is in this pack, if known.
    fn find(&self, id: &[u8; 20]) -> Option<u64> {
        match &self.idx {
            Some(idx) => idx.find(id),
            None => self.found.get(id).copied(),
        }
    }

    /// The object at `offset`, its delta chain applied: from the cache,
    /// or read again down the chain.
    fn resolve(
        &mut self,
        offset: u64,
        depth: u32,
        ctx: &mut Ctx<'_>,
    ) -> io::Result<(Kind, Rc<Vec<u8>>)> {
        let cap = ctx.limits.object_bytes;
        let mut chain: Vec<u64> = Vec::new();
        let mut visited: HashSet<u64> = HashSet::new();
        let mut at = offset;
        // `depth` links above this one already (the walk's own delta).
        let max_depth = u64::from(ctx.limits.delta_depth);
        let too_deep = |links: usize| {
            if links as u64 + u64::from(depth) > max_depth {
                return Err(damaged("a delta chain is deeper than the limit"));
            }
            Ok(())
        };
        too_deep(0)?;
        let (kind, mut data) = loop {
            if let Some(hit) = self.cache.get(at) {
                break hit;
            }
            if !visited.insert(at) {
                return Err(damaged("a delta chain loops"));
            }
            let e = self.entry(Via::Bases, at)?;
            if e.size > cap {
                return Err(damaged("a delta base is over the object size cap"));
            }
            match e.what {
                What::Whole(kind) => {
                    let (data, _) = self.inflate(Via::Bases, e.data, Some(e.size), ctx.budget)?;
                    let data = Rc::new(data);
                    self.cache.put(at, kind, data.clone());
                    break (kind, data);
                }
                What::Delta(Base::Offset(b)) => {
                    chain.push(at);
                    too_deep(chain.len())?;
                    at = b;
                }
                What::Delta(Base::Id(id)) => {
                    chain.push(at);
                    too_deep(chain.len())?;
                    match self.find(&id) {
                        Some(b) => at = b,
                        None => {
                            match loose::read_by_id(ctx.git_dir, &id, ctx.limits, ctx.budget)? {
                                Some((kind, data)) => break (kind, Rc::new(data)),
                                None => return Err(damaged("a delta base is missing")),
                            }
                        }
                    }
                }
            }
        };
        for &link in chain.iter().rev() {
            let e = self.entry(Via::Bases, link)?;
            let (d, _) = self.inflate(Via::Bases, e.data, Some(e.size), ctx.budget)?;
            let out = delta::apply(&data, &d, cap)?;
            ctx.budget.spend(out.len() as u64)?;
            data = Rc::new(out);
            self.cache.put(link, kind, data.clone());
        }
        Ok((kind, data))
    }

    /// The next object of the walk, `None` at the end of the pack.
    pub(super) fn next(&mut self, ctx: &mut Ctx<'_>) -> Option<Step> {
        loop {
            if self.left == 0 || self.ended {
                self.ended = true;
                return self.next_waiting(ctx);
            }
            let offset = self.pos;
            if offset >= self.windows.len.saturating_sub(20) {
                self.ended = true;
                let left = self.left;
                return Some(Step::Skipped(self.skipped(
                    offset,
                    format!(
                        "the pack ends before its last {}",
                        crate::report::counted(u64::from(left), "entry", "entries")
                    ),
                )));
            }
            if let Err(e) = ctx.budget.entry() {
                self.ended = true;
                self.forget_waiting();
                return Some(Step::Skipped(self.skipped(offset, e.to_string())));
            }
            self.left -= 1;
            match self.step(offset, ctx) {
                Ok(Some(step)) => return Some(step),
                Ok(None) => continue,
                Err(e) => {
                    // The entry is lost; the walk goes on where the `.idx`
                    // says the next one is, or stops.
                    let step = Step::Skipped(self.skipped(offset, e.to_string()));
                    if ctx.budget.exhausted() {
                        self.ended = true;
                        self.forget_waiting();
                    } else if self.pos <= offset {
                        match self.idx.as_ref().and_then(|i| i.next_after(offset)) {
                            Some(next) => self.pos = next,
                            None => self.ended = true,
                        }
                    }
                    return Some(step);
                }
            }
        }
    }

    /// Reads the entry at `offset` and moves the walk past it. `Ok(None)`
    /// when it is put off (a REF_DELTA base not known yet).
    fn step(&mut self, offset: u64, ctx: &mut Ctx<'_>) -> io::Result<Option<Step>> {
        let cap = ctx.limits.object_bytes;
        let e = self.entry(Via::Walk, offset)?;
        if e.size > cap {
            let (_, end) = self.inflate(Via::Walk, e.data, None, ctx.budget)?;
            self.pos = end;
            let what = match e.what {
                What::Whole(_) => "an object",
                What::Delta(_) => "a delta",
            };
            return Ok(Some(Step::Skipped(self.skipped(
                offset,
                format!("{what} of {} bytes, over the {cap}-byte cap", e.size),
            ))));
        }
        let (data, end) = self.inflate(Via::Walk, e.data, Some(e.size), ctx.budget)?;
        self.pos = end;
        let (kind, data) = match e.what {
            What::Whole(kind) => (kind, data),
            What::Delta(base) => {
                let (_, result, _) = delta::sizes(&data)?;
                if result > cap {
                    return Ok(Some(Step::Skipped(self.skipped(
                        offset,
                        format!("an object of {result} bytes, over the {cap}-byte cap"),
                    ))));
                }
                let base = match base {
                    Base::Offset(b) => b,
                    Base::Id(id) => match self.find(&id) {
                        Some(b) => b,
                        None if loose::exists(ctx.git_dir, &id) => {
                            return self.finish(offset, ctx).map(Some);
                        }
                        None if self.idx.is_none() && self.waiting_count < ctx.limits.objects => {
                            self.waiting.entry(id).or_default().push(offset);
                            self.waiting_count += 1;
                            return Ok(None);
                        }
                        None => return Err(damaged("a delta base is missing")),
                    },
                };
                let (kind, base) = self.resolve(base, 1, ctx)?;
                let out = delta::apply(&base, &data, cap)?;
                ctx.budget.spend(out.len() as u64)?;
                (kind, out)
            }
        };
        let id = object_id(kind, &data);
        self.cache.put(offset, kind, Rc::new(data.clone()));
        self.learn(id, offset);
        Ok(Some(Step::Object { id, kind, data }))
    }

    /// The object at `offset`, resolved whole.
    fn finish(&mut self, offset: u64, ctx: &mut Ctx<'_>) -> io::Result<Step> {
        let (kind, data) = self.resolve(offset, 0, ctx)?;
        let data = Rc::try_unwrap(data).unwrap_or_else(|rc| (*rc).clone());
        let id = object_id(kind, &data);
        self.learn(id, offset);
        Ok(Step::Object { id, kind, data })
    }

    /// Without an `.idx`: `id` is at `offset`, and the entries waiting for
    /// it as their base can be read.
    fn learn(&mut self, id: [u8; 20], offset: u64) {
        if self.idx.is_none() {
            self.found.insert(id, offset);
            if let Some(w) = self.waiting.remove(&id) {
                self.ready.extend(w);
            }
        }
    }

    fn forget_waiting(&mut self) {
        self.waiting.clear();
        self.ready.clear();
    }

    /// After the walk: the entries that waited for a base, each read once
    /// it is known (which may make others ready), the rest not searched.
    fn next_waiting(&mut self, ctx: &mut Ctx<'_>) -> Option<Step> {
        let offset = match self.ready.pop() {
            Some(o) => o,
            None => {
                let id = *self.waiting.keys().next()?;
                let w = self.waiting.remove(&id).unwrap_or_default();
                let mut w = w.into_iter();
                let first = w.next()?;
                self.ready.extend(w);
                if loose::exists(ctx.git_dir, &id) {
                    first
                } else {
                    // Its fellows are told in turn, by the same error.
                    return Some(Step::Skipped(
                        self.skipped(first, "a delta base is missing".into()),
                    ));
                }
            }
        };
        Some(match self.finish(offset, ctx) {
            Ok(step) => step,
            Err(e) => Step::Skipped(self.skipped(offset, e.to_string())),
        })
    }

    /// The object `id` of this pack, for the tree walk; without an `.idx`
    /// the whole pack is walked first (once) to learn its ids.
    pub(super) fn read(
        &mut self,
        id: &[u8; 20],
        ctx: &mut Ctx<'_>,
    ) -> Option<io::Result<(Kind, Vec<u8>)>> {
        if self.idx.is_none() {
            while self.next(ctx).is_some() {}
        }
        let offset = self.find(id)?;
        Some(self.resolve(offset, 0, ctx).map(|(kind, data)| {
            let data = Rc::try_unwrap(data).unwrap_or_else(|rc| (*rc).clone());
            (kind, data)
        }))
    }

    /// The number of entries the pack's header declares.
    pub(super) fn count(&self) -> u32 {
        self.count
    }
}

/// What a pack needs from the repository while it reads.
pub(super) struct Ctx<'a> {
    pub git_dir: &'a Path,
    pub limits: &'a Limits,
    pub budget: &'a mut Budget,
}

#[cfg(test)]
pub(super) fn tests_offsets(idx: &Path, pack_len: u64) -> Vec<u64> {
    Idx::read(idx, pack_len, &Limits::default())
        .map(|i| i.offsets)
        .unwrap_or_default()
}
