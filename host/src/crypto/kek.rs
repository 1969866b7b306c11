//! The key-encryption key (KEK): sites' private signing keys are stored sealed with it
//! (AES-256-GCM, the key id as associated data), so a copy of a site's database, or a
//! plugin that reads it, does not hold a usable signing key.
//!
//! The KEK comes from the environment (`HEARTH_KEK`, 32 bytes in base64) or else from the
//! file `kek` in the data folder, created with mode 0600 on first start. During a rotation
//! the previous key is also accepted (`HEARTH_KEK_PREVIOUS`, or the file `kek.previous`),
//! and every site's keys still sealed with it, or still stored in plain text by an older
//! version, are sealed again with the current key when the site opens. `hearth kek rotate`
//! does the whole rotation (docs/admin.md).
//!
//! A sealed key is `HKK1`, the KEK's 8-byte id, a 12-byte random nonce, then the
//! ciphertext and tag. A stored key without that prefix is a PKCS#8 document in plain text
//! (which starts with a DER sequence byte, never `H`).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use sha2::{Digest, Sha256};

/// The environment variable holding the KEK (base64 of 32 bytes).
pub const ENV: &str = "HEARTH_KEK";
/// The environment variable holding the previous KEK during a rotation.
pub const ENV_PREVIOUS: &str = "HEARTH_KEK_PREVIOUS";
/// The KEK's file in the data folder.
pub const FILE: &str = "kek";
/// The previous KEK's file while a rotation is under way.
pub const PREVIOUS_FILE: &str = "kek.previous";

const MAGIC: &[u8; 4] = b"HKK1";
const ID_LEN: usize = 8;

/// One key-encryption key.
pub struct Kek {
    id: [u8; ID_LEN],
    key: LessSafeKey,
}

impl Kek {
    /// The key from its 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Kek> {
        if bytes.len() != 32 {
            bail!("a key-encryption key is 32 bytes, not {}", bytes.len());
        }
        let digest = Sha256::new()
            .chain_update(b"hearth key-encryption key id\0")
            .chain_update(bytes)
            .finalize();
        let mut id = [0u8; ID_LEN];
        id.copy_from_slice(&digest[..ID_LEN]);
        let key = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| anyhow::anyhow!("the key-encryption key is not usable"))?;
        Ok(Kek {
            id,
            key: LessSafeKey::new(key),
        })
    }

    /// A short public name of the key (hex of its id), for messages.
    pub fn id(&self) -> String {
        hex::encode(self.id)
    }
}

/// 32 new random bytes, base64: a fresh KEK as `HEARTH_KEK` and the file hold it.
pub fn generate() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn decode(text: &str, what: &str) -> Result<Kek> {
    let text = text.trim();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text))
        .with_context(|| format!("{what} is not base64"))?;
    Kek::from_bytes(&bytes).with_context(|| what.to_owned())
}

/// The keys in use: the current one seals, it and any previous one open.
pub struct Keyring {
    current: Kek,
    previous: Vec<Kek>,
    /// Where the current key came from, for messages.
    pub source: String,
}

/// A stored key, opened.
pub struct Opened {
    /// The PKCS#8 document.
    pub der: Vec<u8>,
    /// False when it is stored in plain text or sealed with a previous KEK: seal it again.
    pub current: bool,
}

impl Keyring {
    /// The keyring of `data_dir`: from the environment when `HEARTH_KEK` is set, else from
    /// the data folder's files (creating `kek` when there is none).
    pub fn open(data_dir: &Path) -> Result<Keyring> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Keyring::load(data_dir, env(ENV).as_deref(), env(ENV_PREVIOUS).as_deref())
    }

    /// Like [`Keyring::open`], with the environment's values given.
    pub fn load(data_dir: &Path, current: Option<&str>, previous: Option<&str>) -> Result<Keyring> {
        if let Some(current) = current {
            let previous = previous
                .map(|text| decode(text, ENV_PREVIOUS))
                .transpose()?
                .into_iter()
                .collect();
            return Ok(Keyring {
                current: decode(current, ENV)?,
                previous,
                source: ENV.to_owned(),
            });
        }
        let file = data_dir.join(FILE);
        if !file.exists() && create_secret(&file, &generate())? {
            tracing::info!("created the key-encryption key {}", file.display());
        }
        let current = read_key(&file)?;
        let previous_file = data_dir.join(PREVIOUS_FILE);
        let previous = if previous_file.exists() {
            vec![read_key(&previous_file)?]
        } else {
            Vec::new()
        };
        Ok(Keyring {
            current,
            previous,
            source: file.display().to_string(),
        })
    }

    /// The current key's id (hex).
    pub fn current_id(&self) -> String {
        self.current.id()
    }

    /// Seals `der`, the private key `kid`, with the current key.
    pub fn seal(&self, kid: &str, der: &[u8]) -> Result<Vec<u8>> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let mut sealed = Vec::with_capacity(4 + ID_LEN + NONCE_LEN + der.len() + 16);
        sealed.extend_from_slice(MAGIC);
        sealed.extend_from_slice(&self.current.id);
        sealed.extend_from_slice(&nonce);
        let mut body = der.to_vec();
        self.current
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(kid.as_bytes()),
                &mut body,
            )
            .map_err(|_| anyhow::anyhow!("sealing the signing key {kid} failed"))?;
        sealed.extend_from_slice(&body);
        Ok(sealed)
    }

    /// Opens the stored private key `kid`.
    pub fn open_key(&self, kid: &str, stored: &[u8]) -> Result<Opened> {
        let Some(rest) = stored.strip_prefix(MAGIC) else {
            return Ok(Opened {
                der: stored.to_vec(),
                current: false,
            });
        };
        if rest.len() < ID_LEN + NONCE_LEN + 16 {
            bail!("the stored signing key {kid} is cut short");
        }
        let (id, rest) = rest.split_at(ID_LEN);
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let kek = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|kek| kek.id == id)
            .with_context(|| {
                format!(
                    "the signing key {kid} is sealed with the key-encryption key {}, which is not configured (the current one is {}, from {}); set {ENV_PREVIOUS} or restore {PREVIOUS_FILE}",
                    hex::encode(id),
                    self.current.id(),
                    self.source
                )
            })?;
        let mut body = body.to_vec();
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| anyhow::anyhow!("the stored signing key {kid} has a bad nonce"))?;
        let der = kek
            .key
            .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut body)
            .map_err(|_| {
                anyhow::anyhow!(
                    "the signing key {kid} does not open with the key-encryption key {} (altered, or stored under another key id)",
                    kek.id()
                )
            })?
            .to_vec();
        Ok(Opened {
            der,
            current: kek.id == self.current.id,
        })
    }
}

fn read_key(path: &Path) -> Result<Kek> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    decode(&text, &path.display().to_string())
}

/// Writes `text` to `path` through a temporary file renamed into place (replacing what is
/// there), readable by the owner only.
pub fn write_secret(path: &Path, text: &str) -> Result<()> {
    let temporary = temporary_secret(path, text)?;
    std::fs::rename(&temporary, path)
        .with_context(|| format!("moving {} into place", path.display()))?;
    Ok(())
}

/// Like [`write_secret`], but never replaces an existing file: false when `path` existed
/// already (two processes starting at once both keep the first one's key).
fn create_secret(path: &Path, text: &str) -> Result<bool> {
    let temporary = temporary_secret(path, text)?;
    let linked = std::fs::hard_link(&temporary, path);
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(error) => Err(error).with_context(|| format!("creating {}", path.display())),
    }
}

/// A new owner-only file beside `path` holding `text`, flushed to disk.
fn temporary_secret(path: &Path, text: &str) -> Result<PathBuf> {
    let temporary: PathBuf = path.with_extension(format!("tmp{:08x}", rand::random::<u32>()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(&temporary)
        .with_context(|| format!("creating {}", temporary.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", temporary.display()))?;
    Ok(temporary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hearth-kek-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_file_is_created_owner_only_and_keys_round_trip() {
        let dir = scratch();
        let ring = Keyring::load(&dir, None, None).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.join(FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let sealed = ring.seal("kid-1", b"0\x82secret pkcs8").unwrap();
        assert!(
            !sealed.windows(6).any(|w| w == b"secret"),
            "sealed, not plain"
        );
        let opened = ring.open_key("kid-1", &sealed).unwrap();
        assert_eq!(opened.der, b"0\x82secret pkcs8");
        assert!(opened.current);
        assert!(ring.open_key("kid-2", &sealed).is_err(), "bound to its kid");
        let plain = ring.open_key("kid-1", b"0\x82plain").unwrap();
        assert!(!plain.current, "plain text is sealed again");
        let again = Keyring::load(&dir, None, None).unwrap();
        assert_eq!(again.current_id(), ring.current_id(), "the file is kept");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_previous_key_opens_and_an_unknown_one_is_named() {
        let dir = scratch();
        let (old, new) = (generate(), generate());
        let before = Keyring::load(&dir, Some(&old), None).unwrap();
        let sealed = before.seal("k", b"0der").unwrap();
        let after = Keyring::load(&dir, Some(&new), Some(&old)).unwrap();
        let opened = after.open_key("k", &sealed).unwrap();
        assert_eq!(opened.der, b"0der");
        assert!(!opened.current);
        let without = Keyring::load(&dir, Some(&new), None).unwrap();
        let error = format!("{:#}", without.open_key("k", &sealed).err().unwrap());
        assert!(error.contains(&before.current_id()), "{error}");
        assert!(Keyring::load(&dir, Some("too short"), None).is_err());
        assert!(
            !dir.join(FILE).exists(),
            "the environment's key writes no file"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
