//! What the kernel reports about a live bootstrap process (`/proc/<pid>/...`).

use std::time::Duration;

use anyhow::Context as _;

/// `VmHWM` (peak resident set) of a live process, in KiB.
pub fn peak_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_vm_hwm(&status).context("no VmHWM in /proc/<pid>/status")
}

/// The run time of every live thread of a process, summed from `se.sum_exec_runtime`
/// (milliseconds) in `/proc/<pid>/task/<tid>/sched`; `None` where the kernel has no such file.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let mut total = 0.0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let sched = std::fs::read_to_string(task.ok()?.path().join("sched")).ok()?;
        total += parse_sum_exec_runtime_ms(&sched)?;
    }
    Some(Duration::from_secs_f64(total / 1000.0))
}

fn parse_sum_exec_runtime_ms(sched: &str) -> Option<f64> {
    sched
        .lines()
        .find_map(|line| line.strip_prefix("se.sum_exec_runtime"))
        .and_then(|rest| rest.trim_start().strip_prefix(':'))
        .and_then(|value| value.trim().parse().ok())
}

fn parse_vm_hwm(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_hwm_is_read_in_kib() {
        let status =
            "Name:\tbootstrap\nVmPeak:\t  20000 kB\nVmHWM:\t    9876 kB\nVmRSS:\t 9000 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(9876));
        assert_eq!(parse_vm_hwm("Name: x\n"), None);
        assert!(peak_rss_kib(std::process::id()).unwrap() > 0);
        let sched = "bootstrap (12, #threads: 3)\n---\nse.exec_start : 1.5\nse.sum_exec_runtime                          :             1.579559\n";
        assert_eq!(parse_sum_exec_runtime_ms(sched), Some(1.579559));
    }
}
