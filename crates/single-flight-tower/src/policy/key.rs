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

/// Where a key is written. It is written twice: counted first, then into a buffer of exactly
/// that length, so that `Bytes::from` takes the buffer as it is and a request builds its key
/// with one allocation (a `Vec` whose capacity differs from its length would cost a second).
trait Sink {
    fn put(&mut self, bytes: &[u8]);

    fn byte(&mut self, byte: u8) {
        self.put(&[byte]);
    }
}

/// Counts the bytes.
impl Sink for usize {
    fn put(&mut self, bytes: &[u8]) {
        *self += bytes.len();
    }
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Runs `write` once to count, once to fill a buffer of that exact length.
fn written(write: impl Fn(&mut dyn Sink)) -> Bytes {
    let mut len = 0usize;
    write(&mut len);
    let mut key = Vec::with_capacity(len);
    write(&mut key);
    debug_assert_eq!(key.len(), len);
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
    written(|sink| {
        let uri = &parts.uri;
        sink.put(parts.method.as_str().as_bytes());
        sink.byte(FIELD);
        sink.put(uri.scheme_str().unwrap_or_default().as_bytes());
        sink.byte(FIELD);
        sink.put(uri.authority().map_or("", |a| a.as_str()).as_bytes());
        sink.byte(FIELD);
        sink.put(uri.path_and_query().map_or("/", |t| t.as_str()).as_bytes());
        sink.byte(FIELD);
        // Both the URI's authority and `Host`: an upstream may build links from either, and a
        // client may send them different (an absolute-form target, or HTTP/2's `:authority`).
        values(sink, &parts.headers, &header::HOST);
        for name in target_headers {
            if *name == header::FORWARDED {
                forwarded(sink, &parts.headers);
            } else {
                values(sink, &parts.headers, name);
            }
        }
        for name in key_headers {
            values(sink, &parts.headers, name);
        }
    })
}

/// The key of a custom key function: the method stays in it, so that `GET` and `HEAD` never mix.
/// The `\0` after the method's field keeps it apart from every default key (whose second field,
/// the scheme, never starts with `\0`).
pub(crate) fn custom_key(method: &Method, custom: &[u8]) -> Bytes {
    written(|sink| {
        sink.put(method.as_str().as_bytes());
        sink.byte(FIELD);
        sink.byte(VALUE);
        sink.put(custom);
    })
}

/// The key of a flight regrouped by `Vary`: the key the request had, then the values of the
/// varied headers `names`.
///
/// It starts with `\0` (every other key starts with a method) and gives the length of the key
/// it extends (which may hold any byte, from a custom key function), so it equals no other key
/// and no regrouped key of another base.
pub(crate) fn regroup_key(base: &[u8], names: &[HeaderName], headers: &HeaderMap) -> Bytes {
    written(|sink| {
        sink.byte(VALUE);
        sink.put(&(base.len() as u64).to_le_bytes());
        sink.put(base);
        for name in names {
            sink.put(name.as_str().as_bytes());
            sink.byte(FIELD);
            for value in headers.get_all(name) {
                sink.put(value.as_bytes());
                sink.byte(VALUE);
            }
            sink.byte(ELEMENT);
        }
    })
}

/// One header's values, in order, each closed by `\0`; then the end of the field.
fn values(sink: &mut dyn Sink, headers: &HeaderMap, name: &HeaderName) {
    for value in headers.get_all(name) {
        sink.put(value.as_bytes());
        sink.byte(VALUE);
    }
    sink.byte(FIELD);
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
fn forwarded(sink: &mut dyn Sink, headers: &HeaderMap) {
    for value in headers.get_all(header::FORWARDED) {
        for element in super::comma_list(value.as_bytes()) {
            for pair in element.split(|&b| b == b';') {
                let pair = super::trim(pair);
                let name = pair.split(|&b| b == b'=').next().unwrap_or_default();
                if pair.is_empty() || super::trim(name).eq_ignore_ascii_case(b"for") {
                    continue;
                }
                sink.put(pair);
                sink.byte(VALUE);
            }
            sink.byte(ELEMENT);
        }
    }
    sink.byte(FIELD);
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
