//! The bytes of a key: how a request's head, or a custom key, or a regrouped flight's key is
//! written, so that two keys are equal only if what they stand for is.
//!
//! Every key is a sequence of fields, each closed by a byte that none of its contents can hold:
//! header values and URIs cannot hold `\0`, `\x01` or `\n` (the `http` crate rejects control
//! bytes in them), header names and methods cannot either. So a missing header, an empty value
//! and two values all encode differently, and no field can run into the next.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName};
use http::{request, Method};

/// Ends a field (the method, the target, one header's list of values).
const FIELD: u8 = b'\n';
/// Ends one header value (or one `Forwarded` parameter).
const VALUE: u8 = 0;
/// Ends one element of `Forwarded`, and one header of a regrouped key.
const ELEMENT: u8 = 1;

/// Room for the headers of a default key beyond its fixed fields: enough for the keys of most
/// requests, which then allocate once (and shrink in place).
const HEADER_ROOM: usize = 128;

/// Writes a key into a buffer of `capacity`, then fits the buffer to it: `Bytes::from` takes a
/// buffer whose capacity equals its length as it is, where any other would cost it a second
/// allocation for the key's life. Written in one pass, because each header of the key is a
/// lookup in the request's header map, the bulk of a key's cost.
fn written(capacity: usize, write: impl FnOnce(&mut Vec<u8>)) -> Bytes {
    let mut key = Vec::with_capacity(capacity);
    write(&mut key);
    key.shrink_to_fit();
    Bytes::from(key)
}

/// The default key: the method; the target (scheme, URI authority, path and query, and the
/// `Host` header); each target header (the parameters of `Forwarded` but its `for`); each key
/// header's values, in order.
pub(crate) fn default_key(
    parts: &request::Parts,
    target_headers: &[HeaderName],
    key_headers: &[HeaderName],
) -> Bytes {
    let uri = &parts.uri;
    let path = uri.path_and_query().map_or("/", |t| t.as_str());
    let authority = uri.authority().map_or("", |a| a.as_str());
    let fixed = parts.method.as_str().len() + 8 + authority.len() + path.len() + 4;
    written(fixed + HEADER_ROOM, |key| {
        key.extend_from_slice(parts.method.as_str().as_bytes());
        key.push(FIELD);
        key.extend_from_slice(uri.scheme_str().unwrap_or_default().as_bytes());
        key.push(FIELD);
        key.extend_from_slice(authority.as_bytes());
        key.push(FIELD);
        key.extend_from_slice(path.as_bytes());
        key.push(FIELD);
        // Both the URI's authority and `Host`: an upstream may build links from either, and a
        // client may send them different (an absolute-form target, or HTTP/2's `:authority`).
        values(key, &parts.headers, &header::HOST);
        let present = present(&parts.headers, target_headers);
        for (i, name) in target_headers.iter().enumerate() {
            if i < 64 && present & (1 << i) == 0 {
                key.push(FIELD); // as `values` writes a header the request does not carry
            } else if *name == header::FORWARDED {
                forwarded(key, &parts.headers);
            } else {
                values(key, &parts.headers, name);
            }
        }
        for name in key_headers {
            values(key, &parts.headers, name);
        }
    })
}

/// The key of a custom key function: the method stays in it, so that `GET` and `HEAD` never mix.
/// The `\0` after the method's field keeps it apart from every default key (whose second field,
/// the scheme, never starts with `\0`).
pub(crate) fn custom_key(method: &Method, custom: &[u8]) -> Bytes {
    written(method.as_str().len() + 2 + custom.len(), |key| {
        key.extend_from_slice(method.as_str().as_bytes());
        key.push(FIELD);
        key.push(VALUE);
        key.extend_from_slice(custom);
    })
}

/// The key of a flight regrouped by `Vary`: the key the request had, then the values of the
/// varied headers `names`.
///
/// It starts with `\0` (every other key starts with a method) and gives the length of the key
/// it extends (which may hold any byte, from a custom key function), so it equals no other key
/// and no regrouped key of another base.
pub(crate) fn regroup_key(base: &[u8], names: &[HeaderName], headers: &HeaderMap) -> Bytes {
    written(9 + base.len() + HEADER_ROOM, |key| {
        key.push(VALUE);
        key.extend_from_slice(&(base.len() as u64).to_le_bytes());
        key.extend_from_slice(base);
        for name in names {
            key.extend_from_slice(name.as_str().as_bytes());
            key.push(FIELD);
            for value in headers.get_all(name) {
                key.extend_from_slice(value.as_bytes());
                key.push(VALUE);
            }
            key.push(ELEMENT);
        }
    })
}

/// Which of the first 64 of `names` the request carries, as bits.
///
/// Most requests carry few of the target headers, and a lookup for each listed name hashes
/// it: one walk over the names the request carries costs less, as long as most of them are
/// set aside by their length alone (a bit per length of the listed names). Measured with
/// callgrind on a request with 9 headers, 3 of them target headers (`Forwarded` among them):
/// the 13 default names cost about 4,100 instructions with a lookup each, 2,800 this way.
fn present(headers: &HeaderMap, names: &[HeaderName]) -> u64 {
    let bit = |name: &HeaderName| 1u64 << name.as_str().len().min(63);
    let names = &names[..names.len().min(64)];
    let lengths = names.iter().fold(0, |lengths, name| lengths | bit(name));
    let mut present = 0;
    for carried in headers.keys() {
        if lengths & bit(carried) == 0 {
            continue;
        }
        if let Some(i) = names.iter().position(|name| name == carried) {
            present |= 1 << i;
        }
    }
    present
}

/// One header's values, in order, each closed by `\0`; then the end of the field.
fn values(key: &mut Vec<u8>, headers: &HeaderMap, name: &HeaderName) {
    for value in headers.get_all(name) {
        key.extend_from_slice(value.as_bytes());
        key.push(VALUE);
    }
    key.push(FIELD);
}

/// `Forwarded` (RFC 7239) without its `for` parameters: each element's other parameters
/// (`host`, `proto`, `by`, extensions) in order, each element closed by `\x01`.
///
/// `for` names the client, different for every request behind one proxy: keying it would
/// keep those requests apart. Everything else is the same for every request through one proxy
/// and may change the response (a framework builds absolute links from `host` and `proto`).
///
/// The split on `,` and `;` does not look into quoted strings, on purpose: it can only find
/// more parameters than a parser that does (the text of a quoted `for` value after a `;` or `,`
/// lands in the key, which keeps that request apart, never together with another). Element
/// positions count: a framework that reads the first element's `host` and one that reads the
/// last see different hosts in `for=a, host=b` and `host=b`.
fn forwarded(key: &mut Vec<u8>, headers: &HeaderMap) {
    for value in headers.get_all(header::FORWARDED) {
        for element in super::comma_list(value.as_bytes()) {
            for pair in element.split(|&b| b == b';') {
                let pair = super::trim(pair);
                let name = pair.split(|&b| b == b'=').next().unwrap_or_default();
                if pair.is_empty() || super::trim(name).eq_ignore_ascii_case(b"for") {
                    continue;
                }
                key.extend_from_slice(pair);
                key.push(VALUE);
            }
            key.push(ELEMENT);
        }
    }
    key.push(FIELD);
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderValue, Request};

    fn head(uri: &str, headers: &[(&str, &str)]) -> request::Parts {
        let mut builder = Request::get(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    fn forwarded_key(values: &[&str]) -> Bytes {
        let pairs: Vec<_> = values.iter().map(|v| ("forwarded", *v)).collect();
        default_key(&head("/", &pairs), &[header::FORWARDED], &[])
    }

    #[test]
    fn forwarded_keys_everything_but_for() {
        let behind_proxy =
            |client: &str| forwarded_key(&[&format!("for={client};host=shop.example;proto=https")]);
        assert_eq!(
            behind_proxy("192.0.2.1"),
            behind_proxy("\"[2001:db8::1]:4711\"")
        );
        let base = behind_proxy("192.0.2.1");
        for other in [
            "for=192.0.2.1;host=evil.example;proto=https",
            "for=192.0.2.1;HOST=evil.example;proto=https",
            "for=192.0.2.1;host=shop.example;proto=http",
            "for=192.0.2.1;host=shop.example",
            "for=192.0.2.1;proto=https;host=shop.example",
            "for=x, for=192.0.2.1;host=shop.example;proto=https",
            "for=192.0.2.1;host=shop.example;proto=https;by=proxy",
        ] {
            assert_ne!(base, forwarded_key(&[other]), "{other}");
        }
        // Two header lines are one list.
        assert_eq!(
            forwarded_key(&["for=a, host=h"]),
            forwarded_key(&["for=a", "host=h"])
        );
        // A quoted `for` that hides a parameter from a careful parser still keys it.
        assert_ne!(
            forwarded_key(&["for=\"a;host=evil\""]),
            forwarded_key(&["for=\"b\""])
        );
        assert_eq!(forwarded_key(&["for=a"]), forwarded_key(&["For = b"]));
        assert_ne!(forwarded_key(&["for=a"]), forwarded_key(&[]));
    }

    #[test]
    fn every_target_header_counts_past_the_first_64() {
        let names: Vec<_> = (0..70)
            .map(|i| HeaderName::from_bytes(format!("x-t{i}").as_bytes()).unwrap())
            .collect();
        let key = |headers: &[(&str, &str)]| default_key(&head("/", headers), &names, &[]);
        let plain = key(&[]);
        for name in ["x-t0", "x-t63", "x-t64", "x-t69"] {
            assert_ne!(plain, key(&[(name, "v")]), "{name}");
        }
        assert_ne!(key(&[("x-t3", "v")]), key(&[("x-t4", "v")]));
        assert_eq!(plain, key(&[("x-t70", "v")]));
    }

    #[test]
    fn host_and_authority_are_both_keyed() {
        let key = |uri: &str, host: &[(&str, &str)]| default_key(&head(uri, host), &[], &[]);
        let origin = key("/a", &[("host", "shop.example")]);
        assert_ne!(origin, key("/a", &[("host", "evil.example")]));
        assert_ne!(origin, key("/a", &[]));
        let absolute = key("http://shop.example/a", &[("host", "shop.example")]);
        assert_ne!(
            absolute,
            key("http://shop.example/a", &[("host", "evil.example")])
        );
        assert_ne!(absolute, origin);
    }

    #[test]
    fn regroup_keys_equal_no_other_key() {
        let mut headers = HeaderMap::new();
        headers.insert("accept-language", HeaderValue::from_static("de"));
        let names = [HeaderName::from_static("accept-language")];
        let base = default_key(&head("/", &[]), &[], &[]);
        let de = regroup_key(&base, &names, &headers);
        assert_eq!(de[0], 0);
        headers.insert("accept-language", HeaderValue::from_static("fr"));
        assert_ne!(de, regroup_key(&base, &names, &headers));
        headers.remove("accept-language");
        assert_ne!(de, regroup_key(&base, &names, &headers));
        assert_ne!(de, regroup_key(&base, &[], &headers));
        // A custom key that spells out a regrouped key's tail is still another key.
        let custom = custom_key(&Method::GET, b"x");
        let longer = custom_key(&Method::GET, &[b"x".as_slice(), &de[1..]].concat());
        assert_ne!(
            regroup_key(&custom, &names, &HeaderMap::new()),
            regroup_key(&longer, &[], &HeaderMap::new())
        );
    }
}
