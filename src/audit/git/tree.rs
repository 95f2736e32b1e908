//! Where an object is in the history: from every ref (`refs/`,
//! `packed-refs`, `HEAD`) and every reflog entry (`logs/`, which keeps
//! commits a ref no longer names), commits are walked breadth first
//! (parents after children), each commit's tree and subtrees depth first.
//! Every commit, tag and tree is read once (a visited set), so a shared
//! subtree is walked under the first commit that reaches it only; the walk
//! stops when every wanted id is named, or after [`Limits::objects`]
//! reads. An object no commit reaches gets no path.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::common::{hex, object_id, parse_hex, Budget, Kind, Limits};
use super::{loose, pack};

/// A ref or reflog file larger than this is not read.
const REF_FILE_MAX: u64 = 64 * 1024 * 1024;
/// Folders below `refs/` and `logs/`, this deep at most.
const REF_DEPTH: usize = 32;
/// A path longer than this (bytes) is not walked further.
const PATH_MAX: usize = 4096;

/// The content of a regular file (never a link) up to `max` bytes.
fn small_file(path: &Path, max: u64) -> Option<Vec<u8>> {
    if !fs::symlink_metadata(path).ok()?.is_file() {
        return None;
    }
    let mut out = Vec::new();
    fs::File::open(path)
        .ok()?
        .take(max)
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}

/// The commits (or tags) the refs and reflogs name, with their names.
fn starts(git_dir: &Path, max: usize) -> Vec<(String, [u8; 20])> {
    let mut out: Vec<(String, [u8; 20])> = Vec::new();
    if let Some(head) = small_file(&git_dir.join("HEAD"), 4096) {
        if let Some(id) = head.get(..40).and_then(parse_hex) {
            out.push(("HEAD".into(), id));
        }
    }
    if let Some(packed) = small_file(&git_dir.join("packed-refs"), REF_FILE_MAX) {
        let mut last = String::new();
        for line in packed.split(|&b| b == b'\n') {
            if out.len() >= max {
                break;
            }
            if let Some(peeled) = line.strip_prefix(b"^") {
                if let Some(id) = peeled.get(..40).and_then(parse_hex) {
                    out.push((last.clone(), id));
                }
            } else if let Some(id) = line.get(..40).and_then(parse_hex) {
                last = String::from_utf8_lossy(line.get(41..).unwrap_or_default()).into_owned();
                out.push((last.clone(), id));
            }
        }
    }
    // Loose refs, then the reflogs (old and new id of every entry).
    for (top, reflog) in [("refs", false), ("logs", true)] {
        let mut stack = vec![(git_dir.join(top), top.to_string(), 0usize)];
        while let Some((dir, name, depth)) = stack.pop() {
            let Ok(list) = fs::read_dir(&dir) else {
                continue;
            };
            let mut entries: Vec<_> = list.filter_map(Result::ok).take(max).collect();
            entries.sort_by_key(|e| e.file_name());
            for e in entries {
                if out.len() >= max {
                    return out;
                }
                let Ok(meta) = e.path().symlink_metadata() else {
                    continue;
                };
                let child = format!("{name}/{}", e.file_name().to_string_lossy());
                if meta.is_dir() {
                    if depth < REF_DEPTH {
                        stack.push((e.path(), child, depth + 1));
                    }
                } else if reflog {
                    let Some(log) = small_file(&e.path(), REF_FILE_MAX) else {
                        continue;
                    };
                    for line in log.split(|&b| b == b'\n') {
                        for id in [line.get(..40), line.get(41..81)]
                            .into_iter()
                            .flatten()
                            .filter_map(parse_hex)
                            .filter(|id| id != &[0; 20])
                        {
                            if out.len() < max {
                                out.push((child.clone(), id));
                            }
                        }
                    }
                } else if let Some(id) = small_file(&e.path(), 4096)
                    .as_deref()
                    .and_then(|f| f.get(..40))
                    .and_then(parse_hex)
                {
                    out.push((child, id));
                }
            }
        }
        // `logs/HEAD` is a file at the top of `logs/`: read above.
    }
    out
}

/// Objects read by id: the packs' (through their `.idx`), then loose ones.
struct Reader<'a> {
    git_dir: &'a Path,
    limits: &'a Limits,
    budget: Budget,
    packs: Vec<pack::Pack>,
    reads: u64,
}

impl Reader<'_> {
    fn read(&mut self, id: &[u8; 20]) -> Option<(Kind, Vec<u8>)> {
        if self.reads >= self.limits.objects || self.budget.exhausted() {
            return None;
        }
        self.reads += 1;
        for p in &mut self.packs {
            let mut ctx = pack::Ctx {
                git_dir: self.git_dir,
                limits: self.limits,
                budget: &mut self.budget,
            };
            if let Some(Ok((kind, data))) = p.read(id, &mut ctx) {
                if &object_id(kind, &data) == id {
                    return Some((kind, data));
                }
            }
        }
        let (kind, data) =
            loose::read_by_id(self.git_dir, id, self.limits, &mut self.budget).ok()??;
        (&object_id(kind, &data) == id).then_some((kind, data))
    }
}

/// The id after `field ` on a line of a commit's or tag's header.
fn header_ids<'d>(data: &'d [u8], field: &'d [u8]) -> impl Iterator<Item = [u8; 20]> + 'd {
    data.split(|&b| b == b'\n')
        .take_while(|line| !line.is_empty())
        .filter_map(move |line| {
            let rest = line.strip_prefix(field)?.strip_prefix(b" ")?;
            rest.get(..40).and_then(parse_hex)
        })
}

/// For each of `ids` that a commit reaches, one such commit (its id in
/// hex) and the object's path in that commit's tree (`""` for the root
/// tree or the commit itself). Objects read along the way are bounded by
/// `limits` like [`Repo::objects`].
pub fn paths(
    git_dir: &Path,
    pack_files: &[(PathBuf, String)],
    ids: &HashSet<[u8; 20]>,
    limits: &Limits,
) -> HashMap<[u8; 20], (String, String)> {
    let mut named: HashMap<[u8; 20], (String, String)> = HashMap::new();
    if ids.is_empty() {
        return named;
    }
    // All packs are open at once here: they share the base cache, and
    // their indexes hold at most `limits.objects` entries together.
    let shared = Limits {
        base_cache: limits.base_cache / (pack_files.len().max(1) as u64),
        ..limits.clone()
    };
    let mut packs = Vec::new();
    let mut entries = 0u64;
    for (path, name) in pack_files {
        let Ok(p) = pack::Pack::open(path, name.clone(), &shared) else {
            continue;
        };
        entries = entries.saturating_add(u64::from(p.count()));
        if entries > limits.objects {
            break;
        }
        packs.push(p);
    }
    let mut reader = Reader {
        git_dir,
        limits,
        budget: Budget::new(limits),
        packs,
        reads: 0,
    };
    let mut visited: HashSet<[u8; 20]> = HashSet::new();
    let mut queue: VecDeque<[u8; 20]> = starts(git_dir, limits.refs)
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    let name = |named: &mut HashMap<_, _>, id: &[u8; 20], commit: &str, path: &str| {
        if ids.contains(id) && !named.contains_key(id) {
            named.insert(*id, (commit.to_string(), path.to_string()));
        }
    };
    while let Some(id) = queue.pop_front() {
        if named.len() == ids.len() {
            break;
        }
        if !visited.insert(id) {
            continue;
        }
        let Some((kind, data)) = reader.read(&id) else {
            continue;
        };
        let commit = hex(&id);
        name(&mut named, &id, &commit, "");
        let root = match kind {
            Kind::Tag => {
                queue.extend(header_ids(&data, b"object").take(1));
                continue;
            }
            Kind::Commit => {
                queue.extend(header_ids(&data, b"parent"));
                match header_ids(&data, b"tree").next() {
                    Some(t) => t,
                    None => continue,
                }
            }
            Kind::Tree => id,
            Kind::Blob => continue,
        };
        // The commit's tree, depth first.
        let mut stack = vec![(root, String::new())];
        while let Some((tree, prefix)) = stack.pop() {
            if tree != id && !visited.insert(tree) {
                continue;
            }
            name(&mut named, &tree, &commit, &prefix);
            let data = if tree == id {
                // A ref naming a tree: already read.
                data.clone()
            } else {
                match reader.read(&tree) {
                    Some((Kind::Tree, d)) => d,
                    _ => continue,
                }
            };
            let mut rest = &data[..];
            while let Some(space) = rest.iter().position(|&b| b == b' ') {
                let Some(nul) = rest.iter().position(|&b| b == 0) else {
                    break;
                };
                let (Some(mode), Some(entry), Some(child)) = (
                    rest.get(..space),
                    rest.get(space + 1..nul),
                    rest.get(nul + 1..nul + 21)
                        .and_then(|c| <[u8; 20]>::try_from(c).ok()),
                ) else {
                    break;
                };
                rest = rest.get(nul + 21..).unwrap_or_default();
                let path = if prefix.is_empty() {
                    String::from_utf8_lossy(entry).into_owned()
                } else {
                    format!("{prefix}/{}", String::from_utf8_lossy(entry))
                };
                match mode {
                    b"40000" | b"040000" => {
                        if path.len() <= PATH_MAX {
                            stack.push((child, path));
                        }
                    }
                    // A submodule's commit: not in this repository.
                    b"160000" => {}
                    _ => name(&mut named, &child, &commit, &path),
                }
            }
        }
    }
    named
}
