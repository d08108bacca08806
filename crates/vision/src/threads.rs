//! Running a few pieces of one picture's work side by side: a camera's
//! picture waits for its slowest piece, and the target machine has two
//! cores (tract runs each network on one).

use crate::VisionError;

/// `work` on each of `items`, the first on this thread and the others on
/// threads of their own, results in the items' order. An item whose
/// thread cannot be started (the system is out of threads) is done here
/// instead, after the first.
pub fn each<I: Sync, T: Send>(
    items: &[I],
    work: impl Fn(&I) -> Result<T, VisionError> + Sync,
) -> Result<Vec<T>, VisionError> {
    let Some((first, rest)) = items.split_first() else {
        return Ok(Vec::new());
    };
    let work = &work;
    std::thread::scope(|s| {
        let others: Vec<_> = rest
            .iter()
            .map(|item| {
                std::thread::Builder::new()
                    .spawn_scoped(s, move || work(item))
                    .map_err(|_| item)
            })
            .collect();
        let mut done = vec![work(first)];
        done.extend(others.into_iter().map(|started| {
            match started {
                Ok(thread) => thread
                    .join()
                    .unwrap_or_else(|_| Err(VisionError::Model("a worker thread failed".into()))),
                Err(item) => work(item),
            }
        }));
        done.into_iter().collect()
    })
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
}
