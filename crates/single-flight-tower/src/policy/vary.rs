//! `Vary`, handled the way an HTTP cache handles it (RFC 9111, section 4.1): a response that
//! varies on request headers goes to the waiters whose values of those headers equal the
//! values of the request that produced it; the others regroup by their own values.

use http::header::{HeaderMap, HeaderName};

/// A request's headers copied into one buffer, one `name:value\n` line per value, in the map's
/// order (the values of one name in the order they came). Header names hold no `:` and values
/// no `\n`, so the lines read back exactly.
///
/// The leader's request goes into the inner call; this copy is what the flight keeps of it,
/// until the response's head says whether anything varies. One allocation per flight, where a
/// clone of the `HeaderMap` would allocate for its tables and for each custom header name
/// (hyper makes each a `Bytes` that allocates when it is first cloned).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HeaderCopy(Box<[u8]>);

impl HeaderCopy {
    /// Copies every header of a request.
    pub(crate) fn new(headers: &HeaderMap) -> Self {
        Self::of(|| headers.iter().map(|(name, value)| (name, value.as_bytes())))
    }

    /// The copy of the lines `lines` yields, sized exactly (it is walked twice).
    fn of<'a, I>(lines: impl Fn() -> I) -> Self
    where
        I: Iterator<Item = (&'a HeaderName, &'a [u8])>,
    {
        let len = lines()
            .map(|(name, value)| name.as_str().len() + value.len() + 2)
            .sum();
        let mut copy = Vec::with_capacity(len);
        for (name, value) in lines() {
            copy.extend_from_slice(name.as_str().as_bytes());
            copy.push(b':');
            copy.extend_from_slice(value);
            copy.push(b'\n');
        }
        Self(copy.into_boxed_slice())
    }

    /// The values of `name`, in order.
    fn values<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a [u8]> + Clone {
        self.0.split(|&b| b == b'\n').filter_map(move |line| {
            line.strip_prefix(name.as_str().as_bytes())?
                .strip_prefix(b":")
        })
    }
}

/// The request headers a shared response varies on, with the values the request that produced
/// it had. Empty for a response without `Vary`: it then goes to every waiter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Varied {
    /// Sorted, without duplicates.
    names: Vec<HeaderName>,
    /// The leader's values of `names` (and of nothing else).
    leader: HeaderCopy,
}

impl Varied {
    /// Keeps the leader's values of `names` from the copy of its request's headers.
    pub(crate) fn new(mut names: Vec<HeaderName>, leader: &HeaderCopy) -> Self {
        names.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        names.dedup();
        let leader = HeaderCopy::of(|| {
            names
                .iter()
                .flat_map(|name| leader.values(name).map(move |value| (name, value)))
        });
        Self { names, leader }
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
            let theirs = request.get_all(name).into_iter().map(|v| v.as_bytes());
            self.leader.values(name).eq(theirs)
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
        let copy = HeaderCopy::new(&leader);
        let varied = Varied::new(names(&["x-a", "accept-language", "x-none"]), &copy);
        assert_eq!(varied.names(), names(&["accept-language", "x-a", "x-none"]));
        // Headers outside `Vary` do not count; the leader's values are all that is kept.
        assert_eq!(&*varied.leader.0, b"accept-language:de\nx-a:1\nx-a:2\n");
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
