//! Running a few pieces of one picture's work side by side: a camera's
//! picture waits for its slowest piece, and the target machine has two
//! cores (tract runs each network on one).

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::VisionError;

/// Most threads one call of [`each`] runs at once, this one included: a
/// picture's closer looks can be a dozen, and each thread holds its own
/// network state (the looks alone took peak memory from 85 to 123 MiB
/// with a thread each), while two cores gain nothing from more than a
/// few.
pub const MAX_THREADS: usize = 4;

/// `work` on each of `items`, results in the items' order. This thread
/// and up to [`MAX_THREADS`] − 1 helpers take the next item as each
/// finishes one; if a helper cannot be started (the system is out of
/// threads), the others do its share.
pub fn each<I: Sync, T: Send>(
    items: &[I],
    work: impl Fn(&I) -> Result<T, VisionError> + Sync,
) -> Result<Vec<T>, VisionError> {
    let next = AtomicUsize::new(0);
    let take = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else {
                return done;
            };
            done.push((i, work(item)));
        }
    };
    let mut results: Vec<Option<Result<T, VisionError>>> = items.iter().map(|_| None).collect();
    std::thread::scope(|s| {
        let helpers: Vec<_> = (1..items.len().min(MAX_THREADS))
            .filter_map(|_| std::thread::Builder::new().spawn_scoped(s, take).ok())
            .collect();
        let mut all = take();
        for helper in helpers {
            // A helper that panicked leaves its items without a result.
            all.extend(helper.join().unwrap_or_default());
        }
        for (i, r) in all {
            results[i] = Some(r);
        }
    });
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(VisionError::Model("a worker thread failed".into()))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_order_and_the_first_error_wins() {
        let got = each(&[1, 2, 3, 4], |&n| Ok(n * 10)).unwrap();
        assert_eq!(got, [10, 20, 30, 40]);
        assert!(each::<i32, i32>(&[], |&n| Ok(n)).unwrap().is_empty());
        let failed = each(&[1, 2, 3], |&n| {
            if n == 2 {
                Err(VisionError::Model("two".into()))
            } else {
                Ok(n)
            }
        });
        assert!(matches!(failed, Err(VisionError::Model(m)) if m == "two"));
    }

    #[test]
    fn no_more_than_max_threads_work_at_once_and_every_item_is_done() {
        let (running, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let items: Vec<usize> = (0..13).collect();
        let got = each(&items, |&n| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(15));
            running.fetch_sub(1, Ordering::SeqCst);
            Ok(n)
        })
        .unwrap();
        assert_eq!(got, items);
        let most = most.load(Ordering::SeqCst);
        assert!((2..=MAX_THREADS).contains(&most), "{most} at once");
    }
}
