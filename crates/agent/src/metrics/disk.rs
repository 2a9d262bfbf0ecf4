//! Space on each mounted file system that holds data (pseudo file systems are skipped).
//!
//! Unix: sysinfo's disk list. Windows: every fixed drive letter (`GetLogicalDrives`,
//! `GetDriveTypeW`) and its space (`GetDiskFreeSpaceExW`), plain kernel32 calls that work on
//! every Windows version and under Wine (where sysinfo's volume enumeration finds nothing).

#[cfg(not(windows))]
use std::collections::HashSet;

use gururmm_protocol::{DiskUsage, MetricsReport};
#[cfg(not(windows))]
use sysinfo::{DiskRefreshKind, Disks};

use super::Collector;

/// File systems that hold no user data and would only add noise.
#[cfg(not(windows))]
const SKIPPED_FS: &[&str] = &[
    "tmpfs", "devtmpfs", "squashfs", "overlay", "proc", "sysfs", "cgroup", "cgroup2", "devfs",
    "autofs", "ramfs", "efivarfs",
];

#[derive(Default)]
pub struct Disk;

impl Disk {
    pub fn new() -> Disk {
        Disk
    }
}

impl Collector for Disk {
    fn name(&self) -> &'static str {
        "disk"
    }

    fn collect(&mut self, report: &mut MetricsReport) -> Result<(), String> {
        let mut out = list()?;
        if out.is_empty() {
            return Err("no mounted disk found".into());
        }
        out.sort_by(|a, b| a.mount.cmp(&b.mount));
        report.disks = out;
        Ok(())
    }
}

#[cfg(not(windows))]
fn list() -> Result<Vec<DiskUsage>, String> {
    // The list is read afresh each time, so disks mounted later are seen.
    let disks = Disks::new_with_refreshed_list_specifics(DiskRefreshKind::nothing().with_storage());
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for d in disks.list() {
        let fs = d.file_system().to_string_lossy().to_ascii_lowercase();
        if SKIPPED_FS.contains(&fs.as_str()) || d.total_space() == 0 {
            continue;
        }
        let mount = d.mount_point().to_string_lossy().into_owned();
        if !seen.insert(mount.clone()) {
            continue;
        }
        out.push(DiskUsage {
            mount,
            total_bytes: d.total_space(),
            used_bytes: d.total_space().saturating_sub(d.available_space()),
        });
    }
    Ok(out)
}

/// The fixed drives (`C:\` ...), read afresh each time so a drive added later is seen.
#[cfg(windows)]
#[allow(unsafe_code)]
fn list() -> Result<Vec<DiskUsage>, String> {
    use windows::core::PCWSTR;
    use windows::Win32::Storage::FileSystem::{
        GetDiskFreeSpaceExW, GetDriveTypeW, GetLogicalDrives,
    };
    const DRIVE_FIXED: u32 = 3;
    // SAFETY: no arguments; returns a bit mask of drive letters.
    let mask = unsafe { GetLogicalDrives() };
    if mask == 0 {
        return Err(format!(
            "GetLogicalDrives failed: {}",
            std::io::Error::last_os_error()
        ));
    }
    let mut out = Vec::new();
    for (bit, letter) in (b'A'..=b'Z').enumerate() {
        if mask & (1 << bit) == 0 {
            continue;
        }
        let mount = format!("{}:\\", letter as char);
        let wide: Vec<u16> = mount.encode_utf16().chain(Some(0)).collect();
        let root = PCWSTR(wide.as_ptr());
        // SAFETY: `root` points to a NUL-terminated UTF-16 string that outlives the calls.
        if unsafe { GetDriveTypeW(root) } != DRIVE_FIXED {
            continue;
        }
        let (mut total, mut free) = (0u64, 0u64);
        // SAFETY: as above; the out pointers are valid u64s owned by this frame.
        if unsafe { GetDiskFreeSpaceExW(root, None, Some(&mut total), Some(&mut free)) }.is_err()
            || total == 0
        {
            continue;
        }
        out.push(DiskUsage {
            mount,
            total_bytes: total,
            used_bytes: total.saturating_sub(free),
        });
    }
    Ok(out)
}
