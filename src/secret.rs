//! A password as configured (`--auth-users`, `--admin-users`).

/// A user's password as configured.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// Compared in constant time.
    Plain(String),
    /// A bcrypt hash (`$2a$`, `$2b$`, `$2y$`).
    Bcrypt(String),
}

impl std::fmt::Debug for Secret {
    // Never print credentials, even in debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Secret::Plain(_) => f.write_str("Plain(***)"),
            Secret::Bcrypt(_) => f.write_str("Bcrypt(***)"),
        }
    }
}
