//! What the agent keeps on disk in its state folder, so nothing is lost across restarts:
//!
//! - `agent_key`: the `grmm_` key issued at enrollment (mode 0600);
//! - `device_id`: a generated id, only when no hardware id can be read;
//! - `command_ids`: ids of recent commands, one a line, appended BEFORE a command starts, so
//!   no id ever runs twice;
//! - `running/<id>`: a marker while a command runs; one left behind at start means the agent
//!   stopped mid-command, and that command is reported failed rather than run again;
//! - `outbox/<id>.json`: a result not yet delivered; written before it is sent, removed once
//!   the server has it (a WebSocket server's `result_ack`, a legacy server's HTTP answer).
//! - `release_public_key`: the release key updates must be signed with, kept from the first
//!   `auth_response` that named one when the config pins none (mode 0600, never replaced);
//! - `update/`: downloads in progress (`<checksum>.part`, resumed with a Range request);
//! - `update_reports/<n>.json`: `update_status` reports not yet sent (a failure, a rollback);
//! - `update_confirmed`: written by a new build on trial once it connected;
//! - `update_applied`: the version a restarted new build names as `previous_version`.

use std::collections::{HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use gururmm_protocol::CommandResult;

/// How many command ids are remembered.
const RECENT_IDS: usize = 10_000;

pub struct StateDir {
    root: PathBuf,
    recent: Mutex<Recent>,
}

struct Recent {
    set: HashSet<String>,
    order: VecDeque<String>,
    lines_in_file: usize,
}

/// Turns a command id into a safe file name (ids are UUIDs, but never trust the wire).
fn file_stem(id: &str) -> String {
    let mut s: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    if s.is_empty() {
        s.push('_');
    }
    s
}

fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut opts = OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        if private {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        #[cfg(not(unix))]
        let _ = private;
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)
}

impl StateDir {
    /// Opens (creating) the state folder and loads the recent command ids.
    pub fn open(root: &Path) -> io::Result<StateDir> {
        fs::create_dir_all(root.join("outbox"))?;
        fs::create_dir_all(root.join("running"))?;
        // Results and the agent key live here: owner only.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(root, fs::Permissions::from_mode(0o700))?;
        }
        let mut recent = Recent {
            set: HashSet::new(),
            order: VecDeque::new(),
            lines_in_file: 0,
        };
        match File::open(root.join("command_ids")) {
            Ok(f) => {
                for line in BufReader::new(f).lines() {
                    let line = line?;
                    let id = line.trim();
                    if id.is_empty() {
                        continue;
                    }
                    recent.lines_in_file += 1;
                    if recent.set.insert(id.to_owned()) {
                        recent.order.push_back(id.to_owned());
                    }
                    if recent.order.len() > RECENT_IDS {
                        if let Some(old) = recent.order.pop_front() {
                            recent.set.remove(&old);
                        }
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(StateDir {
            root: root.to_owned(),
            recent: Mutex::new(recent),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn outbox_dir(&self) -> PathBuf {
        self.root.join("outbox")
    }

    /// The saved `grmm_` key, if enrollment has happened.
    pub fn agent_key(&self) -> Option<String> {
        let text = fs::read_to_string(self.root.join("agent_key")).ok()?;
        let key = text.trim();
        (!key.is_empty()).then(|| key.to_owned())
    }

    /// Saves the issued key, readable by the owner only.
    pub fn save_agent_key(&self, key: &str) -> io::Result<()> {
        write_atomic(&self.root.join("agent_key"), key.as_bytes(), true)
    }

    /// Forgets a saved key the server no longer accepts.
    pub fn remove_agent_key(&self) -> io::Result<()> {
        match fs::remove_file(self.root.join("agent_key")) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// The kept release public key (base64), if one was kept.
    pub fn release_key(&self) -> Option<String> {
        let text = fs::read_to_string(self.root.join("release_public_key")).ok()?;
        let key = text.trim();
        (!key.is_empty()).then(|| key.to_owned())
    }

    /// Keeps the release public key, readable by the owner only.
    pub fn save_release_key(&self, key: &str) -> io::Result<()> {
        write_atomic(&self.root.join("release_public_key"), key.as_bytes(), true)
    }

    /// Where downloads in progress are kept (created on use).
    /// The last policy applied, kept for the next start.
    pub fn policy(&self) -> Option<gururmm_protocol::Policy> {
        let text = fs::read_to_string(self.root.join("policy.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn save_policy(&self, policy: &gururmm_protocol::Policy) -> io::Result<()> {
        let json = serde_json::to_vec(policy).map_err(io::Error::other)?;
        write_atomic(&self.root.join("policy.json"), &json, false)
    }

    pub fn update_dir(&self) -> io::Result<PathBuf> {
        let dir = self.root.join("update");
        fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// The file a new build on trial writes once it connected.
    pub fn update_confirmed_path(&self) -> PathBuf {
        self.root.join("update_confirmed")
    }

    /// The version this build replaced, when it was just installed and has not connected yet.
    pub fn update_applied(&self) -> Option<String> {
        let text = fs::read_to_string(self.root.join("update_applied")).ok()?;
        let v = text.trim();
        (!v.is_empty()).then(|| v.to_owned())
    }

    pub fn set_update_applied(&self, previous_version: Option<&str>) -> io::Result<()> {
        let path = self.root.join("update_applied");
        match previous_version {
            Some(v) => write_atomic(&path, v.as_bytes(), false),
            None => match fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
        }
    }

    /// Keeps an `update_status` report until it is sent; returns its file.
    pub fn put_update_report(
        &self,
        report: &gururmm_protocol::UpdateStatus,
    ) -> io::Result<PathBuf> {
        let dir = self.root.join("update_reports");
        fs::create_dir_all(&dir)?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let path = dir.join(format!("{stamp:024}.json"));
        let json = serde_json::to_vec(report).map_err(io::Error::other)?;
        write_atomic(&path, &json, false)?;
        Ok(path)
    }

    /// The kept `update_status` reports, oldest first.
    pub fn update_reports(&self) -> Vec<(PathBuf, gururmm_protocol::UpdateStatus)> {
        let Ok(dir) = fs::read_dir(self.root.join("update_reports")) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = dir
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        files
            .into_iter()
            .filter_map(|p| {
                let text = fs::read(&p).ok()?;
                match serde_json::from_slice(&text) {
                    Ok(r) => Some((p, r)),
                    Err(_) => {
                        let _ = fs::remove_file(&p);
                        None
                    }
                }
            })
            .collect()
    }

    /// The generated device id, created on first use.
    pub fn generated_device_id(&self) -> io::Result<String> {
        let path = self.root.join("device_id");
        if let Ok(text) = fs::read_to_string(&path) {
            let id = text.trim();
            if !id.is_empty() {
                return Ok(id.to_owned());
            }
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        write_atomic(&path, id.as_bytes(), false)?;
        Ok(id)
    }

    /// Records a command id as started. Returns `false` (and records nothing) when the id was
    /// seen before: that command must not run again. The id is on disk before this returns.
    pub fn claim_command(&self, id: &str) -> io::Result<bool> {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.set.contains(id) {
            return Ok(false);
        }
        let line = format!("{}\n", id.replace(['\n', '\r'], " "));
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.join("command_ids"))?;
        f.write_all(line.as_bytes())?;
        f.sync_data()?;
        recent.set.insert(id.to_owned());
        recent.order.push_back(id.to_owned());
        recent.lines_in_file += 1;
        while recent.order.len() > RECENT_IDS {
            if let Some(old) = recent.order.pop_front() {
                recent.set.remove(&old);
            }
        }
        if recent.lines_in_file > 2 * RECENT_IDS {
            let mut text = String::new();
            for id in &recent.order {
                text.push_str(id);
                text.push('\n');
            }
            write_atomic(&self.root.join("command_ids"), text.as_bytes(), false)?;
            recent.lines_in_file = recent.order.len();
        }
        Ok(true)
    }

    /// Marks a command as running; `detail` (one line) says how to find its processes again.
    pub fn mark_running(&self, id: &str, detail: &str) -> io::Result<()> {
        let path = self.root.join("running").join(file_stem(id));
        let text = format!("{id}\n{}", detail.replace(['\n', '\r'], " "));
        write_atomic(&path, text.as_bytes(), false)
    }

    pub fn clear_running(&self, id: &str) {
        let _ = fs::remove_file(self.root.join("running").join(file_stem(id)));
    }

    /// Commands that were running when the agent last stopped: (id, detail).
    pub fn interrupted_commands(&self) -> Vec<(String, String)> {
        let Ok(dir) = fs::read_dir(self.root.join("running")) else {
            return Vec::new();
        };
        dir.flatten()
            .filter(|e| e.path().extension().is_none())
            .filter_map(|e| fs::read_to_string(e.path()).ok())
            .filter_map(|text| {
                let mut lines = text.lines();
                let id = lines.next()?.trim().to_owned();
                let detail = lines.next().unwrap_or("").trim().to_owned();
                (!id.is_empty()).then_some((id, detail))
            })
            .collect()
    }

    /// Writes a result to the outbox (durably), before any attempt to send it.
    pub fn put_outbox(&self, result: &CommandResult) -> io::Result<PathBuf> {
        let path = self.outbox_path(&result.id);
        let json = serde_json::to_vec(result).map_err(io::Error::other)?;
        write_atomic(&path, &json, false)?;
        Ok(path)
    }

    /// Results waiting to be sent, oldest first.
    pub fn outbox(&self) -> Vec<(PathBuf, CommandResult)> {
        let Ok(dir) = fs::read_dir(self.outbox_dir()) else {
            return Vec::new();
        };
        let mut items: Vec<(std::time::SystemTime, PathBuf, CommandResult)> = Vec::new();
        for entry in dir.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let parsed = fs::read(&path).map_err(|e| e.to_string()).and_then(|b| {
                serde_json::from_slice::<CommandResult>(&b).map_err(|e| e.to_string())
            });
            match parsed {
                Ok(result) => {
                    let modified = entry
                        .metadata()
                        .and_then(|m| m.modified())
                        .unwrap_or(std::time::UNIX_EPOCH);
                    items.push((modified, path, result));
                }
                Err(e) => {
                    tracing::warn!(
                        "outbox file {} is unreadable ({}); moving it aside",
                        crate::logging::ascii(&path.display().to_string()),
                        crate::logging::ascii(&e)
                    );
                    let _ = fs::rename(&path, path.with_extension("bad"));
                }
            }
        }
        items.sort_by_key(|(t, ..)| *t);
        items.into_iter().map(|(_, p, r)| (p, r)).collect()
    }

    /// Removes a delivered result.
    /// The outbox file of command `id`'s result.
    pub fn outbox_path(&self, id: &str) -> PathBuf {
        self.outbox_dir().join(format!("{}.json", file_stem(id)))
    }

    pub fn remove_outbox(&self, path: &Path) {
        if let Err(e) = fs::remove_file(path) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!("cannot remove delivered outbox file: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(id: &str) -> CommandResult {
        CommandResult {
            id: id.to_owned(),
            exit_code: 0,
            stdout: "out".into(),
            stderr: String::new(),
            duration_ms: 1,
            timed_out: false,
        }
    }

    #[test]
    fn command_ids_are_claimed_once_even_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        assert!(state.claim_command("c1").unwrap());
        assert!(!state.claim_command("c1").unwrap());
        drop(state);
        let state = StateDir::open(dir.path()).unwrap();
        assert!(!state.claim_command("c1").unwrap());
        assert!(state.claim_command("c2").unwrap());
    }

    #[cfg(unix)]
    #[test]
    fn agent_key_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        assert_eq!(state.agent_key(), None);
        state.save_agent_key("grmm_abc").unwrap();
        assert_eq!(state.agent_key().as_deref(), Some("grmm_abc"));
        let mode = fs::metadata(dir.path().join("agent_key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = fs::metadata(dir.path()).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);
    }

    #[test]
    fn outbox_round_trip_and_hostile_ids() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        state.put_outbox(&result("a")).unwrap();
        state.put_outbox(&result("../../etc/passwd")).unwrap();
        let items = state.outbox();
        assert_eq!(items.len(), 2);
        for (path, _) in &items {
            assert!(path.starts_with(state.outbox_dir()));
        }
        for (path, _) in items {
            state.remove_outbox(&path);
        }
        assert!(state.outbox().is_empty());
    }

    #[test]
    fn running_markers_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        state.mark_running("r1", "").unwrap();
        state.mark_running("r1", "123 456").unwrap();
        state.mark_running("r2", "").unwrap();
        state.clear_running("r2");
        let state = StateDir::open(dir.path()).unwrap();
        assert_eq!(
            state.interrupted_commands(),
            vec![("r1".to_owned(), "123 456".to_owned())]
        );
    }

    #[test]
    fn generated_device_id_is_stable() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        let a = state.generated_device_id().unwrap();
        let b = state.generated_device_id().unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 32);
    }
}
