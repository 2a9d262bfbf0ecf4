//! A command's whole process tree, so a timeout ends every process the command started.
//!
//! Unix: the command is the leader of a new process group and the group is killed with
//! SIGKILL. (A process that moves itself to another session escapes; nothing short of cgroups
//! catches that.) Windows: the process is put in a job object that kills every process in it
//! when closed.

use tokio::process::{Child, Command};

/// Prepares a command to start its own process tree.
pub fn configure(cmd: &mut Command) {
    #[cfg(unix)]
    {
        cmd.process_group(0);
    }
    #[cfg(windows)]
    {
        const CREATE_NO_WINDOW: u32 = 0x0800_0000;
        cmd.creation_flags(CREATE_NO_WINDOW);
    }
}

pub struct ProcessTree {
    #[cfg(unix)]
    pgid: Option<i32>,
    #[cfg(windows)]
    job: Option<win32job::Job>,
}

impl ProcessTree {
    /// Takes hold of a freshly spawned child's tree.
    pub fn attach(child: &Child) -> ProcessTree {
        #[cfg(unix)]
        {
            ProcessTree {
                pgid: child.id().and_then(|p| i32::try_from(p).ok()),
            }
        }
        #[cfg(windows)]
        {
            let job = (|| {
                let mut info = win32job::ExtendedLimitInfo::new();
                info.limit_kill_on_job_close();
                let job = win32job::Job::create_with_limit_info(&info).ok()?;
                let handle = child.raw_handle()?;
                job.assign_process(handle as isize).ok()?;
                Some(job)
            })();
            if job.is_none() {
                tracing::warn!(
                    "cannot put the command in a job object; a timeout ends only its main process"
                );
            }
            ProcessTree { job }
        }
        #[cfg(not(any(unix, windows)))]
        {
            let _ = child;
            ProcessTree {}
        }
    }

    /// How to find this tree again after an agent crash (Linux: process group id and the
    /// leader's start time, so a reused id is never mistaken for it). None elsewhere: on
    /// Windows the job object dies with the agent and takes the tree with it.
    pub fn identity(&self) -> Option<String> {
        #[cfg(target_os = "linux")]
        {
            let pgid = self.pgid?;
            let start = start_time(u32::try_from(pgid).ok()?)?;
            Some(format!("{pgid} {start}"))
        }
        #[cfg(not(target_os = "linux"))]
        {
            None
        }
    }

    /// Kills every process of the tree that is still there.
    pub fn kill(&mut self) {
        #[cfg(unix)]
        if let Some(pgid) = self.pgid {
            use nix::sys::signal::{killpg, Signal};
            use nix::unistd::Pid;
            // ESRCH (nothing left in the group) is the normal case after a clean exit.
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
        #[cfg(windows)]
        {
            // Closing the job's last handle kills every process in it.
            self.job.take();
        }
    }
}

impl Drop for ProcessTree {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether a process exists and is not a zombie (Linux, from /proc). A killed process whose
/// parent is gone may stay a zombie when PID 1 does not reap (as in some containers): it is
/// dead all the same.
#[cfg(target_os = "linux")]
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}

/// The start time (clock ticks after boot) of a process, from /proc/PID/stat field 22.
#[cfg(target_os = "linux")]
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(") ")?;
    // `rest` starts at field 3 (state); field 22 is the 20th of it.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Kills the processes of a command whose agent died while it ran, found by
/// [`ProcessTree::identity`]. Returns whether a group was still there and was killed.
pub fn kill_leftover(identity: &str) -> bool {
    #[cfg(target_os = "linux")]
    {
        let mut parts = identity.split_whitespace();
        let (Some(Ok(pgid)), Some(Ok(start))) = (
            parts.next().map(str::parse::<i32>),
            parts.next().map(str::parse::<u64>),
        ) else {
            return false;
        };
        let Ok(leader) = u32::try_from(pgid) else {
            return false;
        };
        if pgid <= 1 || start_time(leader) != Some(start) {
            return false;
        }
        use nix::sys::signal::{killpg, Signal};
        killpg(nix::unistd::Pid::from_raw(pgid), Signal::SIGKILL).is_ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = identity;
        false
    }
}
