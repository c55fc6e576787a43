//! A cluster's working directory (`.clusterlab/NAME/` beside the spec):
//! the rendered files, plan.json, the secrets, logs and state.

use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::render::File;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Workdir {
    pub root: PathBuf,
}

impl Workdir {
    /// `dir` if given, else `.clusterlab/NAME` next to the spec.
    pub fn new(spec_dir: &Path, name: &str, dir: Option<&Path>) -> Workdir {
        let root = match dir {
            Some(d) => d.to_path_buf(),
            None => spec_dir.join(".clusterlab").join(name),
        };
        Workdir { root }
    }

    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root.join(rel)
    }

    /// Writes the rendered files, plan.json and the SQL files; returns what it wrote.
    /// Files whose content is unchanged are left alone (their mtime too).
    pub fn write(&self, files: &[File], plan: &Plan) -> Result<Vec<PathBuf>> {
        let mut all: Vec<File> = files.to_vec();
        all.push(File {
            path: "plan.json".into(),
            content: serde_json::to_string_pretty(plan).expect("plan serializes") + "\n",
            executable: false,
        });
        for sql in &plan.sql {
            let content = std::fs::read_to_string(&sql.source).map_err(|e| Error::io(&sql.source, e))?;
            all.push(File { path: Path::new("sql").join(&sql.name), content, executable: false });
        }
        let written = self.write_files(&all)?;
        self.ensure_secrets()?;
        Ok(written)
    }

    /// Writes files under the working directory (atomically, with their
    /// modes), leaving alone those that already have their content.
    pub fn write_files(&self, files: &[File]) -> Result<Vec<PathBuf>> {
        let mut written = Vec::new();
        for f in files {
            let p = self.path(&f.path);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
            if std::fs::read_to_string(&p).ok().as_deref() != Some(f.content.as_str()) {
                write_atomic(&p, f.content.as_bytes())?;
            }
            let mode = if f.executable { 0o755 } else { 0o644 };
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).map_err(|e| Error::io(&p, e))?;
            written.push(p);
        }
        Ok(written)
    }

    /// Generates the cluster's passwords once (mode 0600 in a 0700 directory).
    pub fn ensure_secrets(&self) -> Result<()> {
        let dir = self.path("secrets");
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| Error::io(&dir, e))?;
        let file = dir.join("passwords");
        if file.is_file() {
            return Ok(());
        }
        let content = format!("replication={}\nlab={}\n", random_password(), random_password());
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file)
            .map_err(|e| Error::io(&file, e))?;
        f.write_all(content.as_bytes()).map_err(|e| Error::io(&file, e))?;
        Ok(())
    }

    /// The password of the lab user that `verify` and `sql` log in with.
    pub fn lab_password(&self) -> Result<String> {
        let file = self.path("secrets/passwords");
        let text = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
        text.lines()
            .find_map(|l| l.strip_prefix("lab="))
            .map(str::to_string)
            .ok_or_else(|| Error::usage(format!("{} has no lab password", file.display()), "run `clusterlab render SPEC` to regenerate it"))
    }

    pub fn logs(&self) -> PathBuf {
        let p = self.path("logs");
        let _ = std::fs::create_dir_all(&p);
        p
    }
}

/// 32 characters from [A-Za-z0-9]: safe in .pgpass, conninfo and SQL without escaping.
fn random_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::new();
    let mut buf = [0u8; 64];
    while out.len() < 32 {
        getrandom::getrandom(&mut buf).expect("the OS random source works");
        // 248 = 4 * 62: reject the rest so every character is equally likely.
        out.extend(buf.iter().filter(|b| **b < 248).map(|b| ALPHABET[(*b % 62) as usize] as char));
    }
    out.truncate(32);
    out
}

/// Temp file + rename, so a crash never leaves half a file.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    std::fs::write(&tmp, data).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_long_random_and_plain() {
        let a = random_password();
        let b = random_password();
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
