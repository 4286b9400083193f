//! What the kernel reports about a live bootstrap process, read with the `procfs` crate.

use std::time::Duration;

use ::procfs::process::Process;
use anyhow::Context as _;

/// `VmHWM` (peak resident set) of a live process, in KiB.
pub fn peak_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let process = Process::new(pid_of(pid)?)?;
    process
        .status()?
        .vmhwm
        .context("no VmHWM in /proc/<pid>/status")
}

/// The run time of every live thread of a process, summed from each thread's
/// `/proc/<pid>/task/<tid>/schedstat`; `None` where the kernel has no such file.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let process = Process::new(pid_of(pid).ok()?).ok()?;
    let mut total = 0u64;
    for task in process.tasks().ok()? {
        total += task.ok()?.schedstat().ok()?.sum_exec_runtime;
    }
    Some(Duration::from_nanos(total))
}

fn pid_of(pid: u32) -> anyhow::Result<i32> {
    i32::try_from(pid).context("pid out of range")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_process_has_a_peak_rss_and_a_cpu_time() {
        let me = std::process::id();
        // Touch 8 MiB so the peak is at least that.
        let touched = vec![1u8; 8 << 20];
        assert!(peak_rss_kib(me).unwrap() >= 8 * 1024, "{}", touched.len());
        let spent = cpu_time(me).expect("schedstat is readable here");
        assert!(spent > Duration::ZERO);
        assert!(peak_rss_kib(u32::MAX).is_err());
        assert_eq!(cpu_time(u32::MAX), None);
    }
}
