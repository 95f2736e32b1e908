//! The search for encoded secrets: a short anchor of each form goes into
//! aho-corasick automata of at most [`GROUP`] patterns each, and every
//! anchor found is verified against its whole form.
//!
//! - Anchors: every anchor is [`ANCHOR`] bytes, so two distinct anchors
//!   never start at the same place, and the search restarts one byte after
//!   each match: overlapping occurrences are all seen.
//! - Groups: aho-corasick 1.1 builds its SIMD prefilter (Teddy) only for 64
//!   patterns or fewer; past that the search is 5-10 times slower
//!   (../shared/docs/audit-anchors.md section 2). Several automata run over
//!   the same chunk while it is in cache.
//! - Wrapped forms (base64, hex) are verified skipping line breaks: `\r`,
//!   `\n`, spaces and tabs, JSON's literal `\n` and `\r`, and `\/` stands
//!   for `/`. A wrapped form has a second anchor right after the first:
//!   whatever column the form starts in, lines of [`2 * ANCHOR`] characters
//!   or more leave one of the two whole.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, Input, MatchKind};
use std::collections::HashMap;

/// The length of every anchor.
pub const ANCHOR: usize = 16;
/// The most patterns in one automaton.
pub const GROUP: usize = 64;
/// The most bytes one line break may take (`\r\n` and indentation, or
/// JSON's `\r\n` written out).
pub const MAX_BREAK: usize = 12;

/// One encoded form of a secret.
#[derive(Debug, Clone)]
pub struct Form {
    pub bytes: Vec<u8>,
    pub needle: usize,
    /// May be split by line breaks (base64, hex).
    pub wrapped: bool,
}

impl Form {
    /// The most bytes an occurrence can span. Between two breaks there are
    /// at least [`ANCHOR`] characters (see `verify`).
    pub fn span(&self) -> usize {
        if self.wrapped {
            let breaks = self.bytes.len() / ANCHOR + 1;
            self.bytes.len() + breaks * MAX_BREAK
        } else {
            self.bytes.len()
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    form: usize,
    /// Where the anchor starts in the form.
    at: usize,
}

struct Group {
    automaton: AhoCorasick,
    /// Per pattern: the forms it anchors.
    candidates: Vec<Vec<Candidate>>,
}

/// A verifying search over a set of forms. Built once; searched from many
/// threads.
pub struct Matcher {
    forms: Vec<Form>,
    groups: Vec<Group>,
    anchors: Vec<Vec<u8>>,
    longest: usize,
    /// Whether building an automaton failed (far beyond our sizes).
    pub failed: bool,
}

impl Matcher {
    /// Forms shorter than [`ANCHOR`] are left out (the caller notes them).
    pub fn new(forms: Vec<Form>, group: usize) -> Matcher {
        let mut anchors: Vec<Vec<u8>> = Vec::new();
        let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut candidates: Vec<Vec<Candidate>> = Vec::new();
        let mut longest = 0;
        for (f, form) in forms.iter().enumerate() {
            if form.bytes.len() < ANCHOR {
                continue;
            }
            longest = longest.max(form.span());
            for at in anchor_offsets(form) {
                let Some(anchor) = form.bytes.get(at..at + ANCHOR) else {
                    continue;
                };
                let slot = *index.entry(anchor.to_vec()).or_insert_with(|| {
                    anchors.push(anchor.to_vec());
                    candidates.push(Vec::new());
                    anchors.len() - 1
                });
                if let Some(list) = candidates.get_mut(slot) {
                    list.push(Candidate { form: f, at });
                }
            }
        }
        let mut groups = Vec::new();
        let mut failed = false;
        let group = group.max(1);
        for (pats, cands) in anchors.chunks(group).zip(candidates.chunks(group)) {
            match AhoCorasickBuilder::new()
                .match_kind(MatchKind::LeftmostFirst)
                .build(pats)
            {
                Ok(automaton) => groups.push(Group {
                    automaton,
                    candidates: cands.to_vec(),
                }),
                Err(_) => failed = true,
            }
        }
        Matcher {
            forms,
            groups,
            anchors,
            longest,
            failed,
        }
    }

    /// The most bytes one verified occurrence spans.
    pub fn longest(&self) -> usize {
        self.longest
    }

    /// How many automata run over each haystack.
    #[cfg(test)]
    pub fn groups(&self) -> usize {
        self.groups.len()
    }

    /// The fixed strings searched for.
    pub fn anchors(&self) -> &[Vec<u8>] {
        &self.anchors
    }

    /// Pushes (once) the needle of every form found whole in `haystack`.
    pub fn search(&self, haystack: &[u8], found: &mut Vec<usize>) {
        for group in &self.groups {
            let mut at = 0;
            while at < haystack.len() {
                let Some(m) = group
                    .automaton
                    .find(Input::new(haystack).span(at..haystack.len()))
                else {
                    break;
                };
                let Some(cands) = group.candidates.get(m.pattern().as_usize()) else {
                    break;
                };
                for c in cands {
                    let Some(form) = self.forms.get(c.form) else {
                        continue;
                    };
                    if !found.contains(&form.needle) && verify(form, c.at, haystack, m.start()) {
                        found.push(form.needle);
                    }
                }
                at = m.start() + 1;
            }
        }
    }
}

/// Where a form's anchors start: a wrapped form at 0 and [`ANCHOR`] (one of
/// the two is whole in lines of 32 columns or more); any other at its most
/// varied window, which a prefilter confirms least often by chance.
fn anchor_offsets(form: &Form) -> Vec<usize> {
    let len = form.bytes.len();
    if form.wrapped {
        if len >= 2 * ANCHOR {
            return vec![0, ANCHOR];
        }
        return vec![0];
    }
    let mut best = (0, 0);
    // Bounded: whole entries are at most 64 KiB.
    for at in 0..=len - ANCHOR {
        let window = form.bytes.get(at..at + ANCHOR).unwrap_or_default();
        let mut seen = [false; 256];
        let mut distinct = 0;
        for &b in window {
            if !seen[usize::from(b)] {
                seen[usize::from(b)] = true;
                distinct += 1;
            }
        }
        if distinct > best.1 {
            best = (at, distinct);
        }
        if distinct == ANCHOR {
            break;
        }
    }
    vec![best.0]
}

/// Whether `form` is in `hay` with its anchor (at `at` in the form) at
/// `start` in `hay`.
fn verify(form: &Form, at: usize, hay: &[u8], start: usize) -> bool {
    let bytes = &form.bytes;
    if !form.wrapped {
        let Some(begin) = start.checked_sub(at) else {
            return false;
        };
        return hay.get(begin..begin + bytes.len()) == Some(bytes.as_slice());
    }
    let (Some(before), Some(after)) = (bytes.get(..at), bytes.get(at + ANCHOR..)) else {
        return false;
    };
    forward(after, hay, start + ANCHOR) && backward(before, hay, start)
}

/// `want` at `hay[from..]`, line breaks allowed between characters, at
/// least [`ANCHOR`] characters apart.
fn forward(want: &[u8], hay: &[u8], mut j: usize) -> bool {
    // The anchor itself was a run of ANCHOR characters.
    let mut run = ANCHOR;
    let mut i = 0;
    while let Some(&w) = want.get(i) {
        let Some(&h) = hay.get(j) else {
            return false;
        };
        if h == w {
            i += 1;
            j += 1;
            run += 1;
            continue;
        }
        if h == b'\\' && w == b'/' && hay.get(j + 1) == Some(&b'/') {
            j += 1;
            continue;
        }
        if run < ANCHOR {
            return false;
        }
        let skipped = break_len(hay.get(j..).unwrap_or_default());
        if skipped == 0 {
            return false;
        }
        j += skipped;
        run = 0;
    }
    true
}

/// `want` ending at `hay[..end]`, read backwards.
fn backward(want: &[u8], hay: &[u8], mut j: usize) -> bool {
    let mut run = ANCHOR;
    let mut i = want.len();
    while i > 0 {
        let (Some(&w), Some(h)) = (want.get(i - 1), j.checked_sub(1).and_then(|k| hay.get(k)))
        else {
            return false;
        };
        // A base64 or hex form holds no `\`: `\n` there is a break.
        let escaped_break = matches!(h, b'n' | b'r') && j >= 2 && hay.get(j - 2) == Some(&b'\\');
        if *h == w && !escaped_break {
            i -= 1;
            j -= 1;
            run += 1;
            continue;
        }
        // `\/` for `/`: the `/` was just matched.
        if *h == b'\\' && hay.get(j) == Some(&b'/') && bytes_after_is_slash(want, i) {
            j -= 1;
            continue;
        }
        if run < ANCHOR {
            return false;
        }
        let skipped = break_len_back(hay.get(..j).unwrap_or_default());
        if skipped == 0 {
            return false;
        }
        j -= skipped;
        run = 0;
    }
    true
}

fn bytes_after_is_slash(want: &[u8], i: usize) -> bool {
    want.get(i) == Some(&b'/')
}

/// The length of the line break `hay` starts with, at most [`MAX_BREAK`].
fn break_len(hay: &[u8]) -> usize {
    let mut n = 0;
    while n < MAX_BREAK {
        match (hay.get(n), hay.get(n + 1)) {
            (Some(b'\r' | b'\n' | b' ' | b'\t'), _) => n += 1,
            (Some(b'\\'), Some(b'n' | b'r')) if n + 2 <= MAX_BREAK => n += 2,
            _ => break,
        }
    }
    n
}

/// The length of the line break `hay` ends with, at most [`MAX_BREAK`].
fn break_len_back(hay: &[u8]) -> usize {
    let mut n = 0;
    let len = hay.len();
    while n < MAX_BREAK && n < len {
        let last = hay.get(len - n - 1);
        let before = (len >= n + 2).then(|| hay.get(len - n - 2)).flatten();
        match (last, before) {
            (Some(b'n' | b'r'), Some(b'\\')) if n + 2 <= MAX_BREAK => n += 2,
            (Some(b'\r' | b'\n' | b' ' | b'\t'), _) => n += 1,
            _ => break,
        }
    }
    n
}
