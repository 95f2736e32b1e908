//! "Did you mean": the known name closest to a mistyped section, key or
//! enum value.
//!
//! aktualizr compares every name case-sensitively and silently ignores
//! what it does not know (domain.md section 3), so a typo costs a setting
//! without a word. The checks in [`crate::aktualizr::rules`] word the
//! suggestion; this module only finds it.

/// The candidate equal to `name` but for ASCII case.
pub fn same_but_case<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .find(|c| c.eq_ignore_ascii_case(name))
}

/// The closest candidate by edit distance (ignoring case), when it is close
/// enough to be a typo: at most a third of the name's characters, between
/// one and three edits.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let name_lower = name.to_ascii_lowercase();
    let limit = (name.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .map(|c| (edit_distance(&name_lower, &c.to_ascii_lowercase()), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Levenshtein distance, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, &cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            let insertion = current[j] + 1;
            let deletion = previous[j + 1] + 1;
            current.push(substitution.min(insertion).min(deletion));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aktualizr::schema::SECTIONS;

    #[test]
    fn closest_names() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(
            closest("provison", SECTIONS.iter().copied()),
            Some("provision")
        );
        assert_eq!(closest("zzz", SECTIONS.iter().copied()), None);
        assert_eq!(closest("t", ["tls"]), None);
        assert_eq!(same_but_case("TLS", SECTIONS.iter().copied()), Some("tls"));
        assert_eq!(same_but_case("tlss", SECTIONS.iter().copied()), None);
    }
}
