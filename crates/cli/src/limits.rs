//! The process's descriptor limit against the connection cap (issue 22
//! finding 4): slow clients used to hold connections until `accept`
//! failed for want of descriptors, and then nobody got in. The soft limit
//! is raised to the hard one, and the cap lowered to leave room for the
//! store's files (day files with their journals, pictures, exports).

/// Descriptors kept for everything that is not a client connection.
const RESERVED: usize = 512;

/// The connection cap that fits the descriptor limit: `wanted`, or less
/// (with a warning) where the limit cannot be raised far enough.
pub fn fit_descriptors(wanted: usize) -> usize {
    let Some(limit) = raise_descriptor_limit() else {
        return wanted;
    };
    let room = limit.saturating_sub(RESERVED).max(16);
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
        assert_eq!(
            fit_descriptors(64),
            64.min(limit.saturating_sub(RESERVED).max(16))
        );
        assert!(fit_descriptors(usize::MAX) <= limit.saturating_sub(RESERVED).max(16));
    }
}
