//! Memory and CPU of a process, from Linux's /proc.

/// Linux reports CPU times in USER_HZ ticks, 100 per second on every mainstream build.
const TICKS_PER_SECOND: f64 = 100.0;

/// `VmRSS` and `VmHWM` (peak RSS over the process's life) in KiB.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Memory {
    pub(crate) rss_kib: u64,
    pub(crate) hwm_kib: u64,
}

/// Reads /proc/PID/status (`pid` = "self" for this process); None once the process is gone.
pub(crate) fn memory(pid: &str) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mut m = Memory::default();
    for line in status.lines() {
        if let Some(v) = line.strip_prefix("VmRSS:") {
            m.rss_kib = kib(v)?;
        } else if let Some(v) = line.strip_prefix("VmHWM:") {
            m.hwm_kib = kib(v)?;
        }
    }
    Some(m)
}

fn kib(v: &str) -> Option<u64> {
    v.trim().trim_end_matches("kB").trim().parse().ok()
}

/// User + system CPU seconds the process has used so far.
pub(crate) fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after its ')' are fixed.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_ascii_whitespace();
    // rest starts at field 3 (state); utime and stime are fields 14 and 15.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / TICKS_PER_SECOND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let m = memory("self").unwrap();
        assert!(m.rss_kib > 0 && m.hwm_kib >= m.rss_kib);
        assert!(cpu_seconds("self").unwrap() >= 0.0);
    }
}
