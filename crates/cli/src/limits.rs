//! The process's descriptor limit against the connection cap (issue 22
//! finding 4): slow clients used to hold connections until `accept`
//! failed for want of descriptors, and then nobody got in. The soft limit
//! is raised to the hard one, and the cap lowered to leave room for the
//! store's files (day files with their journals, pictures, exports).

/// Descriptors kept for the store's files other than its idle readers
/// (day files' writers and journals, pictures, exports).
const RESERVED: usize = 512;

/// Descriptors the store's idle reading connections may hold (three
/// each), as a share of the limit: a quarter.
fn reader_descriptors(limit: usize) -> usize {
    platekeeper_store::limit_idle_readers(limit / 4 / 3) * 3
}

/// Raises the descriptor limit and fits the store's idle readers to it:
/// for every command (a bench or an import opens as many day files as
/// the server does).
pub fn fit_store_readers() {
    if let Some(limit) = raise_descriptor_limit() {
        reader_descriptors(limit);
    }
}

/// The connection cap that fits the descriptor limit: `wanted`, or less
/// (with a warning) where the limit cannot be raised far enough. Also
/// fits the store's pool of idle readers to the limit.
pub fn fit_descriptors(wanted: usize) -> usize {
    let Some(limit) = raise_descriptor_limit() else {
        return wanted;
    };
    let reserved = RESERVED + reader_descriptors(limit);
    let room = limit.saturating_sub(reserved).max(16);
    if wanted > room {
        tracing::warn!(
            wanted,
            allowed = room,
            descriptor_limit = limit,
            "lowering --max-connections to fit the open-file limit (raise LimitNOFILE / ulimit -n)"
        );
        room
    } else {
        wanted
    }
}

/// Raises the soft open-file limit to the hard one; returns the limit
/// in force.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn raise_descriptor_limit() -> Option<usize> {
    // Linux refuses a soft limit above fs.nr_open (1,048,576 by default),
    // which an "unlimited" hard limit would ask for.
    const MOST: libc::rlim_t = 1 << 20;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return None;
        }
        let want = lim.rlim_max.min(MOST);
        if lim.rlim_cur < want {
            let raised = libc::rlimit {
                rlim_cur: want,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = want;
            }
        }
    }
    Some(usize::try_from(lim.rlim_cur).unwrap_or(usize::MAX))
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn raise_descriptor_limit() -> Option<usize> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn the_cap_leaves_room_for_the_store_under_the_descriptor_limit() {
        let limit = raise_descriptor_limit().unwrap();
        let reserved = RESERVED + reader_descriptors(limit);
        assert!(reserved < limit || limit < 2048);
        assert_eq!(
            fit_descriptors(64),
            64.min(limit.saturating_sub(reserved).max(16))
        );
        assert!(fit_descriptors(usize::MAX) <= limit.saturating_sub(reserved).max(16));
    }

    #[test]
    fn idle_readers_take_at_most_a_quarter_of_a_low_limit() {
        assert_eq!(reader_descriptors(1024), 85 * 3);
        assert_eq!(
            reader_descriptors(1 << 20),
            platekeeper_store::MAX_IDLE_TOTAL * 3
        );
        assert_eq!(reader_descriptors(20), 8 * 3, "never fewer than eight");
        reader_descriptors(1 << 20);
    }
}
