//! CPU time and memory of processes, from `/proc` (Linux only, like the rest of the benchmark).

use serde::Serialize;

/// Clock ticks per second of `/proc/<pid>/stat` times: 100 on every Linux architecture the
/// project runs on (`getconf CLK_TCK`).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds (user + system) a process has used so far; `None` once it is gone.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: split after it.
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / TICKS_PER_SECOND)
}

/// Peak resident memory (VmHWM) in MiB since start or since [`reset_peak`].
pub fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Resets the peak-RSS mark to the current RSS, so that each scenario reports its own peak.
/// Best effort: needs the right to write `/proc/<pid>/clear_refs` (our own children: yes).
pub fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// Pids whose command name (`/proc/<pid>/comm`) is `name`.
pub fn pids_named(name: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim_end() == name)
        })
        .collect()
}

/// The pid of the process listening on TCP `port` on loopback or any address, found through
/// the socket inode in `/proc/net/tcp` and the processes' open descriptors.
pub fn listener_pid(port: u16) -> Option<u32> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let wanted = format!(":{port:04X}");
    let inode = table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        // local_address is field 1, st (0A = LISTEN) field 3, inode field 9.
        (f.get(1)?.ends_with(&wanted) && *f.get(3)? == "0A").then(|| f.get(9).map(|s| s.to_string()))?
    })?;
    let socket = format!("socket:[{inode}]");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { continue };
        if fds.flatten().any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.to_str() == Some(&socket))) {
            return Some(pid);
        }
    }
    None
}

/// A snapshot of several processes' CPU, to subtract from a later one.
#[derive(Clone, Debug)]
pub struct CpuMark {
    pids: Vec<u32>,
    seconds: f64,
}

impl CpuMark {
    pub fn take(pids: &[u32]) -> Self {
        Self { pids: pids.to_vec(), seconds: pids.iter().filter_map(|p| cpu_seconds(*p)).sum() }
    }

    /// CPU seconds used by the same processes since this mark (those still alive).
    pub fn elapsed(&self) -> f64 {
        (Self::take(&self.pids).seconds - self.seconds).max(0.0)
    }
}

/// One process's share of a scenario.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct ProcessUsage {
    pub name: String,
    pub cpu_s: f64,
    /// `None` for groups of processes (PostgreSQL) and processes we may not inspect.
    pub peak_rss_mib: Option<f64>,
}

/// Machine load right now: the 1, 5 and 15 minute averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        let me = std::process::id();
        assert!(cpu_seconds(me).is_some());
        assert!(peak_rss_mib(me).is_some_and(|mib| mib > 0.0));
        assert_eq!(cpu_seconds(u32::MAX), None);
    }

    #[test]
    fn finds_a_listener() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(listener_pid(port), Some(std::process::id()));
    }
}
