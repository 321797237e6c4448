//! Detached ed25519 signatures of plugin files.
//!
//! When the operator configures a public key (`ORBIT_PLUGIN_PUBLIC_KEY`),
//! every plugin *file* must come with `<file>.sig` beside it: the ed25519
//! signature of the file's exact bytes, as 128 hex digits (or the raw 64
//! bytes). A missing, malformed or non-verifying signature refuses the
//! plugin, at start-up and on hot reload alike. Embedded default plugins are
//! part of the signed-off binary and are not checked.
//!
//! `orbit-server plugin keygen` and `plugin sign` make keys and signatures;
//! the private key is a PKCS#8 file and is never printed.

use std::path::{Path, PathBuf};

use ring::signature::{ED25519, Ed25519KeyPair, UnparsedPublicKey};

/// An ed25519 public key (32 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// 64 hexadecimal digits.
    pub fn parse_hex(text: &str) -> Result<Self, String> {
        let bytes = hex::decode(text.trim())
            .map_err(|_| "expected 64 hexadecimal digits (an ed25519 public key)".to_string())?;
        <[u8; 32]>::try_from(bytes.as_slice())
            .map(PublicKey)
            .map_err(|_| {
                format!(
                    "expected 64 hexadecimal digits (an ed25519 public key), got {} bytes",
                    bytes.len()
                )
            })
    }

    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }
}

/// Where the signature of `file` is read from.
pub fn signature_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".sig");
    PathBuf::from(name)
}

/// Checks `<file>.sig` against `bytes` (the file's content as read) and `key`.
pub fn verify(file: &Path, bytes: &[u8], key: PublicKey) -> Result<(), String> {
    let path = signature_path(file);
    let raw = std::fs::read(&path).map_err(|e| {
        format!(
            "ORBIT_PLUGIN_PUBLIC_KEY is set, so {} must hold its signature: {e}",
            path.display()
        )
    })?;
    let sig = decode_signature(&raw).ok_or_else(|| {
        format!(
            "{} is not an ed25519 signature (expected 128 hexadecimal digits or 64 bytes)",
            path.display()
        )
    })?;
    UnparsedPublicKey::new(&ED25519, key.0)
        .verify(bytes, &sig)
        .map_err(|_| {
            format!(
                "{} does not verify with public key {}: the file was changed or signed with another key",
                path.display(),
                key.to_hex()
            )
        })
}

fn decode_signature(raw: &[u8]) -> Option<[u8; 64]> {
    if let Ok(bytes) = <[u8; 64]>::try_from(raw) {
        return Some(bytes);
    }
    let text = std::str::from_utf8(raw).ok()?;
    <[u8; 64]>::try_from(hex::decode(text.trim()).ok()?.as_slice()).ok()
}

/// A new key pair: (PKCS#8 private key document, public key).
pub fn generate() -> Result<(Vec<u8>, PublicKey), String> {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| "key generation failed")?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| "key generation failed")?;
    let public = public_of(&pair);
    Ok((pkcs8.as_ref().to_vec(), public))
}

fn public_of(pair: &Ed25519KeyPair) -> PublicKey {
    use ring::signature::KeyPair;
    let mut key = [0u8; 32];
    key.copy_from_slice(pair.public_key().as_ref());
    PublicKey(key)
}

/// Signs `bytes` with a PKCS#8 private key; returns the hex signature and
/// the public key that verifies it.
pub fn sign(pkcs8: &[u8], bytes: &[u8]) -> Result<(String, PublicKey), String> {
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8)
        .map_err(|_| "not an ed25519 private key in PKCS#8 form".to_string())?;
    Ok((hex::encode(pair.sign(bytes)), public_of(&pair)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_every_way_to_fail() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.wasm");
        let bytes = b"\0asm component bytes";
        std::fs::write(&file, bytes).unwrap();
        let (private, public) = generate().unwrap();
        let (sig, signer) = sign(&private, bytes).unwrap();
        assert_eq!(signer, public);

        let e = verify(&file, bytes, public).unwrap_err();
        assert!(e.contains("p.wasm.sig must hold its signature"), "{e}");
        std::fs::write(signature_path(&file), &sig).unwrap();
        verify(&file, bytes, public).unwrap();
        let raw = hex::decode(&sig).unwrap();
        std::fs::write(signature_path(&file), &raw).unwrap();
        verify(&file, bytes, public).unwrap();

        let e = verify(&file, b"\0asm changed", public).unwrap_err();
        assert!(e.contains("does not verify"), "{e}");
        let (_, other) = generate().unwrap();
        assert!(verify(&file, bytes, other).is_err());
        std::fs::write(signature_path(&file), "xyz").unwrap();
        let e = verify(&file, bytes, public).unwrap_err();
        assert!(e.contains("not an ed25519 signature"), "{e}");

        assert!(PublicKey::parse_hex(&public.to_hex()).is_ok());
        assert!(
            PublicKey::parse_hex("abcd")
                .unwrap_err()
                .contains("got 2 bytes")
        );
        assert!(sign(b"not a key", bytes).is_err());
    }
}
