//! The standard `process_*` metrics of a Prometheus exporter (CPU, memory, file
//! descriptors, start time), read from Linux's `/proc/self` at scrape time. Elsewhere
//! (or if `/proc` cannot be read) they are left out rather than reported as zero.

/// The process as `/proc/self` describes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub open_fds: u64,
    pub max_fds: Option<u64>,
    pub start_time_seconds: f64,
}

/// `/proc` counts CPU time in USER_HZ ticks, 100 a second on every Linux architecture
/// (the kernel scales to it whatever its own tick).
const USER_HZ: f64 = 100.0;

impl ProcessStats {
    pub fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let boot = std::fs::read_to_string("/proc/stat").ok()?;
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
        let open_fds = u64::try_from(std::fs::read_dir("/proc/self/fd").ok()?.count()).ok()?;
        parse(&stat, &status, &boot, &limits, open_fds)
    }
}

/// The stats from the texts of `/proc/self/stat`, `/proc/self/status`, `/proc/stat` and
/// `/proc/self/limits`.
fn parse(
    stat: &str,
    status: &str,
    boot: &str,
    limits: &str,
    open_fds: u64,
) -> Option<ProcessStats> {
    // The command name (field 2) may hold spaces: the fields after it follow its `)`.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Counting from field 3 (state) at index 0: utime 14, stime 15, starttime 22, vsize 23.
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    let ticks = |n: u64| n as f64 / USER_HZ;
    let cpu_seconds = ticks(field(14)? + field(15)?);
    let virtual_bytes = field(23)?;
    let resident_bytes = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())?
        * 1024;
    let boot_time: u64 = boot
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())?;
    let start_time_seconds = boot_time as f64 + ticks(field(22)?);
    let max_fds = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|soft| soft.parse().ok());
    Some(ProcessStats {
        cpu_seconds,
        resident_bytes,
        virtual_bytes,
        open_fds,
        max_fds,
        start_time_seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proc_texts_are_read_field_by_field() {
        // A command name with spaces and a parenthesis, as the kernel writes it.
        let stat = "4242 (ottgate (x) y) S 1 4242 4242 0 -1 4194560 2000 0 0 0 250 75 0 0 20 0 9 0 123456 1073741824 5000 18446744073709551615";
        let status = "Name:\tottgate\nVmRSS:\t   20480 kB\nThreads:\t9\n";
        let boot = "cpu  1 2 3\nbtime 1764900000\nprocesses 10\n";
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n";
        let p = parse(stat, status, boot, limits, 17).unwrap();
        assert_eq!(p.cpu_seconds, 3.25);
        assert_eq!(p.resident_bytes, 20_971_520);
        assert_eq!(p.virtual_bytes, 1_073_741_824);
        assert_eq!(p.open_fds, 17);
        assert_eq!(p.max_fds, Some(1024));
        assert_eq!(p.start_time_seconds, 1_764_900_000.0 + 1234.56);
    }

    #[test]
    fn this_process_is_read_on_linux() {
        let p = ProcessStats::read().unwrap();
        assert!(p.resident_bytes > 0 && p.open_fds > 0 && p.start_time_seconds > 1e9);
    }
}
