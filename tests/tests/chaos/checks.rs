//! The checks of a run against the semantics, over what the world logged.

use super::*;

impl World {
    /// Semantics 1 and 2: no two executions of a key overlap, unless a `forget` explains it.
    ///
    /// An execution's logged interval runs from a clock read at the first poll of its work to a
    /// clock read in the guard its work future drops; the true interval (from the start of that
    /// poll to the end of that drop) contains it, so two logged intervals that overlap are two
    /// executions that truly overlapped.
    ///
    /// They may: when a flight is forgotten, its work runs on while the next call starts a new
    /// flight. So an overlap of executions X and Y fails the test only if no successful `forget`
    /// of their key can have removed the earlier one from the group before the later one was
    /// created. With X created first, such a forget must have run after X's flight was created
    /// (so it returned after `X.registered_after`, read before X's starter registered) and before
    /// Y's flight was created (so it was called before `Y.created_before`, read in Y's closure).
    /// The clock reads bracket the true events, so the rule never blames a legitimate overlap;
    /// and since which of X and Y was created first is not logged, both orders are tried.
    pub(crate) fn check_overlaps(&self) {
        let execs = lock(&self.execs).clone();
        let forgets = lock(&self.forgets).clone();
        for k in 0..KEYS {
            let mut ran: Vec<&ExecLog> = execs
                .iter()
                .filter(|e| e.k == k && e.first_poll.is_some())
                .collect();
            ran.sort_by_key(|e| e.first_poll);
            let forgot: Vec<&ForgetLog> = forgets.iter().filter(|f| f.k == k && f.forgot).collect();
            let explained = |earlier: &ExecLog, later: &ExecLog| {
                forgot
                    .iter()
                    .any(|f| f.after > earlier.registered_after && f.before < later.created_before)
            };
            for (i, x) in ran.iter().enumerate() {
                let x_start = x.first_poll.expect("filtered");
                for y in &ran[i + 1..] {
                    let y_start = y.first_poll.expect("filtered");
                    if y_start > x.dropped {
                        break;
                    }
                    if explained(x, y) || explained(y, x) {
                        self.stats.overlaps_explained.fetch_add(1, SeqCst);
                    } else {
                        self.violation(format!(
                            "key {k}: executions {} (polled at {x_start}, dropped at {}) and {} \
                             (polled at {y_start}, dropped at {}) ran at the same time, and no \
                             forget of the key explains it: {x:?} / {y:?}",
                            x.exec, x.dropped, y.exec, y.dropped
                        ));
                    }
                }
            }
        }
    }

    /// Semantics 2: nobody gets the outcome of an execution that had already been handed to a
    /// waiter before it even called (a stale result of a finished flight).
    ///
    /// A caller that joins a flight does so before the flight is unlinked, and every waiter gets
    /// the outcome after that unlink; so the outcome's first receipt, by anyone, comes after
    /// every legitimate waiter had started.
    pub(crate) fn check_receipts(&self) {
        let receipts = lock(&self.receipts);
        let created: std::collections::HashMap<u64, u64> = lock(&self.execs)
            .iter()
            .map(|e| (e.exec, e.registered_after))
            .collect();
        for r in receipts.iter() {
            match created.get(&r.exec) {
                None => self.violation(format!(
                    "a caller got the outcome of execution {}, which never ran",
                    r.exec
                )),
                Some(&registered_after) if registered_after > r.got => {
                    self.violation(format!(
                        "a caller got the outcome of execution {} at {}, before that execution \
                         was started (at {registered_after})",
                        r.exec, r.got
                    ));
                }
                Some(_) => {}
            }
        }
        let mut first_got = std::collections::HashMap::new();
        for r in receipts.iter() {
            let first = first_got.entry(r.exec).or_insert(r.got);
            *first = (*first).min(r.got);
        }
        for r in receipts.iter() {
            let first = first_got[&r.exec];
            if r.started > first {
                self.violation(format!(
                    "stale outcome: a caller that started at {} got the outcome of execution {}, \
                     which another waiter had already received at {first}",
                    r.started, r.exec
                ));
            }
        }
    }
}
