//! Space on each mounted file system that holds data (pseudo file systems are skipped).

use std::collections::HashSet;

use gururmm_protocol::{DiskUsage, MetricsReport};
use sysinfo::{DiskRefreshKind, Disks};

use super::Collector;

/// File systems that hold no user data and would only add noise.
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
        // The list is read afresh each time, so disks mounted later are seen.
        let disks =
            Disks::new_with_refreshed_list_specifics(DiskRefreshKind::nothing().with_storage());
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
        if out.is_empty() {
            return Err("no mounted disk found".into());
        }
        out.sort_by(|a, b| a.mount.cmp(&b.mount));
        report.disks = out;
        Ok(())
    }
}
