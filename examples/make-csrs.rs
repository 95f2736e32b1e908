//! Makes N PKCS#10 certificate signing requests in-process, as devices
//! would hand them to a factory station, for `device-certs --csr DIR`'s
//! benchmark (scripts/bench/bench-device-certs.sh csr, docs/benchmark.md):
//!
//! ```text
//! cargo run --release --example make-csrs -- N DIR [--key-type ec-p256|ec-p384] [--id-prefix dev-]
//! ```
//!
//! Each request is for a key of its own (EC P-256 by default), subject
//! `CN=<prefix><number>` (`dev-000001`, zero-padded to at least six
//! digits), signed with that key, written PEM to `DIR/<id>.csr`. The keys
//! are not kept: the benchmark needs only the requests. DIR is made if
//! missing; an existing request file is never overwritten. All cores
//! work, each on its own share of the numbers. 100,000 requests through
//! `openssl req -new` would take an hour of processes.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;

use der::asn1::{Any, BitString, SetOfVec};
use der::oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ID_EC_PUBLIC_KEY, SECP_256_R_1, SECP_384_R_1,
};
use der::oid::ObjectIdentifier;
use der::pem::LineEnding;
use der::{Encode, EncodePem};
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo, Version};
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

const USAGE: &str = "usage: make-csrs N DIR [--key-type ec-p256|ec-p384] [--id-prefix PREFIX]";

/// The key type of the requests.
#[derive(Debug, Clone, Copy)]
enum KeyType {
    P256,
    P384,
}

#[derive(Debug)]
struct Args {
    count: u64,
    dir: PathBuf,
    key_type: KeyType,
    prefix: String,
}

/// Why a run stopped; printed as `error: ...`.
#[derive(Debug)]
struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn parse_args(mut raw: impl Iterator<Item = String>) -> Result<Args, Error> {
    let mut positional = Vec::new();
    let mut key_type = KeyType::P256;
    let mut prefix = String::from("dev-");
    while let Some(arg) = raw.next() {
        match arg.as_str() {
            "--key-type" => {
                key_type = match raw.next().as_deref() {
                    Some("ec-p256") => KeyType::P256,
                    Some("ec-p384") => KeyType::P384,
                    other => {
                        return Err(Error(format!(
                            "--key-type takes ec-p256 or ec-p384, not {}",
                            other.unwrap_or("nothing")
                        )))
                    }
                }
            }
            "--id-prefix" => {
                prefix = raw
                    .next()
                    .ok_or_else(|| Error("--id-prefix takes a value".into()))?;
            }
            "-h" | "--help" => return Err(Error(USAGE.into())),
            _ if arg.starts_with('-') => {
                return Err(Error(format!("unknown option {arg}; {USAGE}")))
            }
            _ => positional.push(arg),
        }
    }
    let [count, dir] = positional.as_slice() else {
        return Err(Error(USAGE.into()));
    };
    let count = u64::from_str(count)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| Error(format!("N must be a positive number, not {count:?}")))?;
    Ok(Args {
        count,
        dir: PathBuf::from(dir),
        key_type,
        prefix,
    })
}

/// One request for a new key, subject `CN=id`, as PEM.
fn request(id: &str, key_type: KeyType) -> Result<String, Error> {
    let der_error = |e: der::Error| Error(format!("encoding the request for {id}: {e}"));
    let subject = Name::from_str(&format!("CN={id}"))
        .map_err(|e| Error(format!("{id} is not a valid CN: {e}")))?;
    let signer = Signer::new(key_type);
    let point = signer.public_point();
    let info = CertReqInfo {
        version: Version::V1,
        subject,
        public_key: SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: ID_EC_PUBLIC_KEY,
                parameters: Some(Any::encode_from(&signer.curve()).map_err(der_error)?),
            },
            subject_public_key: BitString::from_bytes(&point).map_err(der_error)?,
        },
        attributes: SetOfVec::new(),
    };
    let signature = signer.sign(&info.to_der().map_err(der_error)?);
    let request = CertReq {
        info,
        algorithm: AlgorithmIdentifierOwned {
            oid: signer.algorithm(),
            parameters: None,
        },
        signature: BitString::from_bytes(&signature).map_err(der_error)?,
    };
    request.to_pem(LineEnding::LF).map_err(der_error)
}

/// A device's key and the signature algorithm it signs with.
#[derive(Debug)]
enum Signer {
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
}

impl Signer {
    /// A new random key (the OS's CSPRNG).
    fn new(key_type: KeyType) -> Signer {
        match key_type {
            KeyType::P256 => Signer::P256(p256::ecdsa::SigningKey::random(&mut rand_core::OsRng)),
            KeyType::P384 => Signer::P384(p384::ecdsa::SigningKey::random(&mut rand_core::OsRng)),
        }
    }

    /// The public key as an uncompressed point (SEC1).
    fn public_point(&self) -> Vec<u8> {
        match self {
            Signer::P256(key) => key
                .verifying_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
            Signer::P384(key) => key
                .verifying_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
        }
    }

    /// The named curve of the public key's algorithm.
    fn curve(&self) -> ObjectIdentifier {
        match self {
            Signer::P256(_) => SECP_256_R_1,
            Signer::P384(_) => SECP_384_R_1,
        }
    }

    /// The DER ECDSA signature over `message`.
    fn sign(&self, message: &[u8]) -> Vec<u8> {
        use ecdsa::signature::Signer as _;
        match self {
            Signer::P256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(message);
                signature.to_der().as_bytes().to_vec()
            }
            Signer::P384(key) => {
                let signature: p384::ecdsa::Signature = key.sign(message);
                signature.to_der().as_bytes().to_vec()
            }
        }
    }

    /// The signature algorithm: ECDSA with the curve's hash.
    fn algorithm(&self) -> ObjectIdentifier {
        match self {
            Signer::P256(_) => ECDSA_WITH_SHA_256,
            Signer::P384(_) => ECDSA_WITH_SHA_384,
        }
    }
}

/// The id of device number `n` of `count`: the prefix and `n`
/// zero-padded to at least six digits (all ids of a run are as wide).
fn device_id(prefix: &str, n: u64, count: u64) -> String {
    let width = count.to_string().len().max(6);
    format!("{prefix}{n:0width$}")
}

/// Writes the requests of numbers `first..=last` into `dir`.
fn write_range(args: &Args, dir: &Path, first: u64, last: u64) -> Result<(), Error> {
    for n in first..=last {
        let id = device_id(&args.prefix, n, args.count);
        let pem = request(&id, args.key_type)?;
        let path = dir.join(format!("{id}.csr"));
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| {
                Error(format!(
                    "cannot create {}: {e}; give an empty or new folder",
                    path.display()
                ))
            })?;
        file.write_all(pem.as_bytes())
            .map_err(|e| Error(format!("cannot write {}: {e}", path.display())))?;
    }
    Ok(())
}

fn run(args: &Args) -> Result<(), Error> {
    fs::create_dir_all(&args.dir)
        .map_err(|e| Error(format!("cannot make {}: {e}", args.dir.display())))?;
    let workers = std::thread::available_parallelism()
        .map(|n| n.get() as u64)
        .unwrap_or(1)
        .min(args.count);
    let share = args.count.div_ceil(workers);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let first = w * share + 1;
                let last = ((w + 1) * share).min(args.count);
                scope.spawn(move || {
                    if first > last {
                        Ok(())
                    } else {
                        write_range(args, &args.dir, first, last)
                    }
                })
            })
            .collect();
        for handle in handles {
            handle
                .join()
                .map_err(|_| Error("a worker thread stopped".into()))??;
        }
        Ok(())
    })
}

fn main() -> ExitCode {
    let result = parse_args(std::env::args().skip(1)).and_then(|args| run(&args));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
