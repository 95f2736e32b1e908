//! The work budget of one file (the module's "Work"): what is left of
//! each limit while a file is read ([`Budget`]), and the iteration counts
//! a key derivation may ask for.

use der::Tagged;

use super::error::P12Error;
use super::limits::{
    Limit, MAX_BAGS, MAX_CERTIFICATES, MAX_ENCRYPTED_PARTS, MAX_ITERATIONS, MAX_WORK,
};
use crate::crypto::error::{element_at, integer_value};

/// What one file may still make the tool do (see the module's "Work").
#[derive(Debug)]
pub(super) struct Budget {
    pub(super) work: u64,
    encrypted_parts: usize,
    bags: usize,
    certificates: usize,
}

impl Budget {
    pub(super) fn new() -> Budget {
        Budget {
            work: MAX_WORK,
            encrypted_parts: MAX_ENCRYPTED_PARTS,
            bags: MAX_BAGS,
            certificates: MAX_CERTIFICATES,
        }
    }

    /// Pay for a key derivation before running it.
    pub(super) fn spend(&mut self, cost: u64) -> Result<(), P12Error> {
        self.work = self
            .work
            .checked_sub(cost)
            .ok_or(P12Error::OverBudget(Limit::Work))?;
        Ok(())
    }

    /// Refuse at once a list of `count` things that cannot all fit,
    /// before it is decoded; `None` (not a list) is left to the decoder.
    pub(super) fn room_for(&self, limit: Limit, count: Option<usize>) -> Result<(), P12Error> {
        let left = match limit {
            Limit::Work => return Ok(()),
            Limit::EncryptedParts => self.encrypted_parts,
            Limit::Bags => self.bags,
            Limit::Certificates => self.certificates,
        };
        match count {
            Some(count) if count > left => Err(P12Error::OverBudget(limit)),
            _ => Ok(()),
        }
    }

    /// Count one more of `limit`'s things.
    pub(super) fn count(&mut self, limit: Limit) -> Result<(), P12Error> {
        let left = match limit {
            Limit::Work => return self.spend(1),
            Limit::EncryptedParts => &mut self.encrypted_parts,
            Limit::Bags => &mut self.bags,
            Limit::Certificates => &mut self.certificates,
        };
        *left = left.checked_sub(1).ok_or(P12Error::OverBudget(limit))?;
        Ok(())
    }
}

/// Why the iteration count at `path` of `der` is refused, when it is: for
/// a structure the strict decoder refused, whose iteration count may not
/// fit its Rust type (`i32` in `pkcs12`, `u32` in `pkcs5`).
pub(super) fn iterations_at(der: &[u8], path: &[usize]) -> Option<P12Error> {
    let element = element_at(der, path)?;
    match integer_value(&element) {
        Some(count) => check_iterations(count).err(),
        None if element.tag() == der::Tag::Integer => Some(P12Error::Malformed(format!(
            "an iteration count {} bytes long is not a number of iterations",
            element.value().len()
        ))),
        None => None,
    }
}

pub(super) fn check_iterations(count: i128) -> Result<i32, P12Error> {
    if count < 1 {
        return Err(P12Error::Malformed(format!(
            "an iteration count of {count} is not allowed"
        )));
    }
    if count > i128::from(MAX_ITERATIONS) {
        return Err(P12Error::TooManyIterations {
            count,
            max: MAX_ITERATIONS,
        });
    }
    i32::try_from(count).map_err(|_| P12Error::TooManyIterations {
        count,
        max: MAX_ITERATIONS,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::pkcs12::open;
    use crate::crypto::pkcs12::tests::{export, material, secret};

    #[test]
    fn absurd_iteration_counts_are_refused() {
        let dir = material("iter", "ec");
        let bytes = export(&dir, "", &["-nomac", "-iter", "1000001"]);
        assert_eq!(
            open(&bytes, &secret("")).unwrap_err(),
            P12Error::TooManyIterations {
                count: 1_000_001,
                max: MAX_ITERATIONS
            }
        );
    }

    #[test]
    fn the_budget_refuses_the_first_thing_over_a_limit() {
        let mut budget = Budget::new();
        budget.spend(MAX_WORK - 1).unwrap();
        budget.spend(1).unwrap();
        assert_eq!(budget.spend(1), Err(P12Error::OverBudget(Limit::Work)));
        for (limit, max) in [
            (Limit::EncryptedParts, MAX_ENCRYPTED_PARTS),
            (Limit::Bags, MAX_BAGS),
            (Limit::Certificates, MAX_CERTIFICATES),
        ] {
            let mut budget = Budget::new();
            for _ in 0..max {
                budget.count(limit).unwrap();
            }
            let err = budget.count(limit).unwrap_err();
            assert_eq!(err, P12Error::OverBudget(limit));
            assert!(
                err.to_string().contains(&format!("more than {max} ")),
                "{err}"
            );
        }
        assert_eq!(
            P12Error::OverBudget(Limit::Certificates).to_string(),
            "the bundle asks for too much work: it holds more than 32 certificates; \
             re-export it with `openssl pkcs12 -export` and its default iteration \
             counts, holding only the client certificate, its key and the CA chain"
        );
    }
}
