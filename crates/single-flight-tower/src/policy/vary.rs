//! `Vary`, handled the way an HTTP cache handles it (RFC 9111, section 4.1): a response that
//! varies on request headers goes to the waiters whose values of those headers equal the
//! values of the request that produced it; the others regroup by their own values.

use http::header::{HeaderMap, HeaderName};

/// The request headers a shared response varies on, with the values the request that produced
/// it had. Empty for a response without `Vary`: it then goes to every waiter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Varied {
    /// Sorted, without duplicates.
    names: Vec<HeaderName>,
    /// The leader's values of `names` (and of nothing else).
    leader: HeaderMap,
}

impl Varied {
    /// Keeps the leader's values of `names` from its request's headers.
    pub(crate) fn new(mut names: Vec<HeaderName>, leader: &HeaderMap) -> Self {
        names.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        names.dedup();
        let mut values = HeaderMap::new();
        for name in &names {
            for value in leader.get_all(name) {
                values.append(name.clone(), value.clone());
            }
        }
        Self {
            names,
            leader: values,
        }
    }

    /// The varied header names.
    pub(crate) fn names(&self) -> &[HeaderName] {
        &self.names
    }

    /// Whether a waiter's request selects the same representation as the leader's: every
    /// varied header has the same values, in the same order (a missing header matches only a
    /// missing one).
    ///
    /// The comparison is of the bytes as sent. A cache may normalise (`en, de` and `en,de`); not
    /// doing so only regroups requests that could have shared, it never shares a response
    /// between requests that differ.
    pub(crate) fn matches(&self, request: &HeaderMap) -> bool {
        self.names.iter().all(|name| {
            self.leader
                .get_all(name)
                .iter()
                .eq(request.get_all(name).iter())
        })
    }
}

/// Adds `more` to `names`, keeping it sorted and without duplicates: the varied headers a
/// regrouped waiter's key holds grow with each regrouping.
pub(crate) fn union(names: &mut Vec<HeaderName>, more: &[HeaderName]) {
    names.extend_from_slice(more);
    names.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
    names.dedup();
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn names(list: &[&'static str]) -> Vec<HeaderName> {
        list.iter().map(|n| HeaderName::from_static(n)).collect()
    }

    #[test]
    fn waiters_with_the_leaders_values_match() {
        let leader = headers(&[
            ("accept-language", "de"),
            ("user-agent", "leader"),
            ("x-a", "1"),
            ("x-a", "2"),
        ]);
        let varied = Varied::new(names(&["x-a", "accept-language", "x-none"]), &leader);
        assert_eq!(varied.names(), names(&["accept-language", "x-a", "x-none"]));
        // Headers outside `Vary` do not count; the leader's values are all that is kept.
        assert_eq!(varied.leader.len(), 3);
        let same = headers(&[("accept-language", "de"), ("x-a", "1"), ("x-a", "2")]);
        assert!(varied.matches(&same));
        for other in [
            headers(&[("accept-language", "fr"), ("x-a", "1"), ("x-a", "2")]),
            headers(&[("x-a", "1"), ("x-a", "2")]),
            headers(&[("accept-language", "de"), ("x-a", "2"), ("x-a", "1")]),
            headers(&[("accept-language", "de"), ("x-a", "1")]),
            headers(&[
                ("accept-language", "de"),
                ("x-a", "1"),
                ("x-a", "2"),
                ("x-none", ""),
            ]),
        ] {
            assert!(!varied.matches(&other), "{other:?}");
        }
        // No `Vary`: everyone matches.
        assert!(Varied::default().matches(&headers(&[("accept-language", "fr")])));
    }

    #[test]
    fn union_stays_sorted_and_unique() {
        let mut list = names(&["x-b"]);
        union(&mut list, &names(&["x-a", "x-b"]));
        assert_eq!(list, names(&["x-a", "x-b"]));
    }
}
