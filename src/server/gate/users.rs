//! The users the gate lets in: each with a password given as it is (kept only as its
//! SHA-256) or as a crypt hash, parsed from `--auth USER:PASSWORD`.

use sha_crypt::{PasswordVerifier, ShaCrypt};

/// One user's password: as given, or as a sha-512-crypt (or sha-256-crypt) hash.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Password {
    /// The password itself (kept as its SHA-256, compared in constant time).
    Plain([u8; 32]),
    /// A `$6$...` or `$5$...` hash, as `openssl passwd -6` prints it.
    Crypt(String),
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password, not even its digest.
        f.write_str(match self {
            Password::Plain(_) => "Plain(..)",
            Password::Crypt(_) => "Crypt(..)",
        })
    }
}

/// A user allowed in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct User {
    /// The name.
    pub name: String,
    /// The password.
    pub password: Password,
}

impl User {
    /// Parses `USER:PASSWORD`, where PASSWORD may be a `$6$`/`$5$` crypt hash.
    ///
    /// # Errors
    /// No colon, an empty name, or a hash that is not a crypt hash; in words.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let (name, password) = text
            .split_once(':')
            .ok_or("expected USER:PASSWORD (or USER:$6$... from openssl passwd -6)")?;
        if name.is_empty() {
            return Err("expected a user name before the colon");
        }
        let password = if password.starts_with("$6$") || password.starts_with("$5$") {
            // A well-formed hash turns a wrong password down; a malformed one fails to parse.
            let checked = ShaCrypt::default().verify_password(b"", password);
            if !matches!(
                checked,
                Err(sha_crypt::password_hash::Error::PasswordInvalid)
            ) {
                return Err("expected a sha-512-crypt hash such as openssl passwd -6 prints");
            }
            Password::Crypt(password.to_string())
        } else if password.is_empty() {
            return Err("expected a password after the colon");
        } else {
            Password::Plain(digest(password.as_bytes()))
        };
        Ok(Self {
            name: name.to_string(),
            password,
        })
    }
}

/// The SHA-256 of `bytes`: how a plain password is kept and compared.
pub(super) fn digest(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    out
}
