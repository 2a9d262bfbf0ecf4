//! Who this machine is: a hardware-based device id, the hostname and the OS.

use gururmm_protocol::OsInfo;
use sha2::{Digest, Sha256};

use crate::session::replace_nul;
use crate::state::StateDir;

/// Hashes the hardware identifiers into the device id (64 hex characters).
pub fn hash_ids(parts: &[String]) -> String {
    let mut h = Sha256::new();
    h.update(b"gururmm-device-id-v1");
    for p in parts {
        h.update([0u8]);
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The hardware identifiers readable on this machine (none when nothing is readable).
pub fn hardware_ids() -> Vec<String> {
    let mut ids = Vec::new();
    #[cfg(unix)]
    {
        for path in ["/etc/machine-id", "/var/lib/dbus/machine-id"] {
            if let Ok(text) = std::fs::read_to_string(path) {
                let t = text.trim();
                if !t.is_empty() {
                    ids.push(format!("machine-id:{t}"));
                    break;
                }
            }
        }
        // Readable by root only on most systems; used when it is.
        if let Ok(text) = std::fs::read_to_string("/sys/class/dmi/id/product_uuid") {
            let t = text.trim().to_ascii_lowercase();
            if !t.is_empty() {
                ids.push(format!("dmi-uuid:{t}"));
            }
        }
    }
    #[cfg(windows)]
    {
        if let Some(guid) = windows_machine_guid() {
            ids.push(format!("machine-guid:{}", guid.to_ascii_lowercase()));
        }
    }
    ids
}

#[cfg(windows)]
fn windows_machine_guid() -> Option<String> {
    use winreg::enums::{HKEY_LOCAL_MACHINE, KEY_READ, KEY_WOW64_64KEY};
    let hklm = winreg::RegKey::predef(HKEY_LOCAL_MACHINE);
    let key = hklm
        .open_subkey_with_flags(
            r"SOFTWARE\Microsoft\Cryptography",
            KEY_READ | KEY_WOW64_64KEY,
        )
        .ok()?;
    let guid: String = key.get_value("MachineGuid").ok()?;
    let guid = guid.trim().to_owned();
    (!guid.is_empty()).then_some(guid)
}

/// The device id: the hashed hardware ids, else a generated id kept in the state folder.
pub fn device_id(state: &StateDir) -> std::io::Result<String> {
    let ids = hardware_ids();
    if ids.is_empty() {
        tracing::warn!("no hardware id readable; using a generated device id");
        return Ok(hash_ids(&[format!(
            "generated:{}",
            state.generated_device_id()?
        )]));
    }
    Ok(hash_ids(&ids))
}

/// The hostname (NUL replaced: it goes to the server in legacy enrollment too).
pub fn hostname() -> String {
    sysinfo::System::host_name()
        .filter(|h| !h.trim().is_empty())
        .map(|h| replace_nul(&h).into_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

pub fn os_info() -> OsInfo {
    let os_type = match std::env::consts::OS {
        "macos" => "macos".to_owned(),
        other => other.to_owned(),
    };
    let os_version = sysinfo::System::long_os_version()
        .or_else(sysinfo::System::os_version)
        .unwrap_or_else(|| "unknown".to_owned());
    OsInfo {
        os_type,
        os_version: replace_nul(&os_version).into_owned(),
        arch: std::env::consts::ARCH.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_id_is_stable_and_hex() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        let a = device_id(&state).unwrap();
        let b = device_id(&state).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn different_ids_hash_differently() {
        assert_ne!(hash_ids(&["a".into()]), hash_ids(&["b".into()]));
        assert_ne!(
            hash_ids(&["ab".into()]),
            hash_ids(&["a".into(), "b".into()])
        );
    }
}
