//! The keys file: what each simulated device got when it enrolled, so a later run (or a
//! reconnect) authenticates with its key instead of enrolling again.
//!
//! Format: JSON lines, one `{"device_id", "agent_id", "api_key"}` per line, appended as agents
//! enroll. A single JSON array of the same objects is read too. A device listed twice keeps
//! its last line (it enrolled again after its key was refused).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEntry {
    pub device_id: String,
    pub agent_id: String,
    pub api_key: String,
}

/// Reads a keys file; a missing file is an empty one.
pub fn load(path: &Path) -> anyhow::Result<HashMap<String, KeyEntry>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(anyhow::anyhow!("reading {}: {e}", path.display())),
    };
    let entries: Vec<KeyEntry> = if text.trim_start().starts_with('[') {
        serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: not a JSON array of keys: {e}", path.display()))?
    } else {
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(n, l)| {
                serde_json::from_str(l)
                    .map_err(|e| anyhow::anyhow!("{} line {}: {e}", path.display(), n + 1))
            })
            .collect::<anyhow::Result<_>>()?
    };
    Ok(entries
        .into_iter()
        .map(|e| (e.device_id.clone(), e))
        .collect())
}

/// Appends new keys as agents enroll. Writes are small and rare (once per device), so a
/// blocking write under a mutex is fine even from async tasks.
pub struct KeyWriter {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

impl KeyWriter {
    pub fn open(path: &Path) -> anyhow::Result<KeyWriter> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| anyhow::anyhow!("opening {}: {e}", path.display()))?;
        Ok(KeyWriter {
            path: path.to_owned(),
            file: Mutex::new(file),
        })
    }

    pub fn append(&self, entry: &KeyEntry) {
        let mut line = serde_json::to_string(entry).expect("key entry serializes");
        line.push('\n');
        let mut file = self.file.lock().expect("keys file");
        if let Err(e) = file.write_all(line.as_bytes()) {
            eprintln!("warning: cannot write {}: {e}", self.path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_array_both_read_and_last_line_wins() {
        let dir = tempdir();
        let path = dir.join("keys.jsonl");
        let w = KeyWriter::open(&path).unwrap();
        for (d, k) in [("a", "k1"), ("b", "k2"), ("a", "k3")] {
            w.append(&KeyEntry {
                device_id: d.into(),
                agent_id: format!("id-{d}"),
                api_key: k.into(),
            });
        }
        let keys = load(&path).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys["a"].api_key, "k3");

        let array = dir.join("keys.json");
        std::fs::write(
            &array,
            r#"[{"device_id":"x","agent_id":"1","api_key":"grmm_x"}]"#,
        )
        .unwrap();
        assert_eq!(load(&array).unwrap()["x"].agent_id, "1");
        assert!(load(&dir.join("missing")).unwrap().is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempdir() -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("fleet-sim-keys-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
