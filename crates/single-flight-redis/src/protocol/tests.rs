//! Unit tests of the protocol's decisions, without a server.
use super::*;

#[test]
fn names_share_one_hash_tag() {
    let names = Names::new("customers").unwrap();
    let key = rmp_serde::to_vec(&"ada").unwrap();
    let flight = names.flight(&key);
    assert_eq!(flight.tag, "o2FkYQ");
    assert_eq!(flight.lease, "customers:{o2FkYQ}:lease");
    assert_eq!(flight.result("t1"), "customers:{o2FkYQ}:result:t1");
    assert_eq!(flight.channel, "customers:{o2FkYQ}");
    assert_eq!(names.pattern(), "customers:{*");
}

#[test]
fn patterns_escape_the_namespaces_glob_characters() {
    let pattern = |ns: &str| Names::new(ns).unwrap().pattern();
    assert_eq!(pattern("p*"), "p\\*:{*");
    assert_eq!(pattern("p?"), "p\\?:{*");
    assert_eq!(pattern("p[x"), "p\\[x:{*");
    assert_eq!(pattern("a]\\b"), "a\\]\\\\b:{*");
}

#[test]
fn messages_name_their_flight() {
    assert_eq!(parse_message(b"t1|sf\x01"), Some(("t1", &b"sf\x01"[..])));
    // An envelope may contain the separator.
    assert_eq!(parse_message(b"t2|a|b"), Some(("t2", &b"a|b"[..])));
    // Abandoned: no envelope.
    assert_eq!(parse_message(b"t3|"), Some(("t3", &b""[..])));
    assert_eq!(parse_message(b"garbage"), None);
}

#[test]
fn release_answers() {
    assert_eq!(Release::from_answer(0), Release::Unshared);
    assert_eq!(Release::from_answer(3), Release::Shared(3));
    assert_eq!(Release::from_answer(-1), Release::Lost);
}

#[test]
fn base64_is_url_safe_and_unpadded() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg");
    assert_eq!(base64(b"fo"), "Zm8");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(b"foob"), "Zm9vYg");
    assert_eq!(base64(&[0xfb, 0xff, 0xfe]), "-__-");
}

#[test]
fn namespaces_with_braces_are_refused() {
    assert!(Names::new("a{b").is_none());
    assert!(Names::new("a}b").is_none());
    assert!(Names::new("").is_none());
    assert!(Names::new("app:v2").is_some());
}

#[test]
fn tokens_differ() {
    let (a, b) = (token(), token());
    assert_eq!(a.len(), 11);
    assert_ne!(a, b);
}

#[test]
fn envelopes_round_trip() {
    let v: Envelope<(u32, String)> = Envelope::Value((7, "seven".into()));
    assert_eq!(decode::<(u32, String)>(&encode(&v, 1024), 1024), Ok(v));
    let p: Envelope<u32> = Envelope::Panicked("boom".into());
    assert_eq!(decode::<u32>(&encode(&p, 1024), 1024), Ok(p));
    let o: Envelope<u32> = Envelope::Oversize(99);
    assert_eq!(decode::<u32>(&encode(&o, 1024), 1024), Ok(o));
    let u: Envelope<u32> = Envelope::Unencodable("no".into());
    assert_eq!(decode::<u32>(&encode(&u, 1024), 1024), Ok(u));
}

/// A value whose `Serialize` fails.
struct Unserializable;

impl serde::Serialize for Unserializable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("not today"))
    }
}

#[test]
fn values_that_do_not_serialize_become_a_marker_not_a_panic() {
    let bytes = encode(&Envelope::Value(Unserializable), 1024);
    assert!(matches!(
        decode::<u32>(&bytes, 1024),
        Ok(Envelope::Unencodable(m)) if m.contains("not today")
    ));
}

#[test]
fn oversize_values_become_a_marker() {
    let big: Envelope<String> = Envelope::Value("x".repeat(100));
    let bytes = encode(&big, 50);
    assert!(matches!(decode::<String>(&bytes, 50), Ok(Envelope::Oversize(n)) if n > 100));
    // The reader's own cap also refuses.
    let bytes = encode(&big, 1024);
    assert!(matches!(
        decode::<String>(&bytes, 50),
        Err(DecodeError::Oversize(_))
    ));
}

#[test]
fn wrong_bytes_never_decode_as_a_value() {
    assert_eq!(decode::<u32>(b"", 64), Err(DecodeError::Format));
    assert_eq!(decode::<u32>(b"hello", 64), Err(DecodeError::Format));
    assert_eq!(
        decode::<u32>(b"sf\x02\x00\x07", 64),
        Err(DecodeError::Format)
    );
    assert_eq!(decode::<u32>(b"sf\x01\x09", 64), Err(DecodeError::Format));
    // A string where a number is expected.
    let s = encode(&Envelope::Value("seven".to_owned()), 64);
    assert!(matches!(decode::<u32>(&s, 64), Err(DecodeError::Value(_))));
    // A value followed by garbage.
    let mut t = encode(&Envelope::Value(7u32), 64);
    t.push(0);
    assert!(matches!(decode::<u32>(&t, 64), Err(DecodeError::Value(_))));
    // A truncated value.
    let u = encode(&Envelope::Value("seven".to_owned()), 64);
    assert!(matches!(
        decode::<String>(&u[..u.len() - 1], 64),
        Err(DecodeError::Value(_))
    ));
}

#[test]
fn panic_messages_are_cut_to_the_cap_on_a_char_boundary() {
    let bytes = encode::<u32>(&Envelope::Panicked("ééé".into()), 7);
    assert_eq!(decode::<u32>(&bytes, 7), Ok(Envelope::Panicked("é".into())));
}

#[test]
fn decisions_after_a_check() {
    let ms = Duration::from_millis;
    assert_eq!(
        after_check(Check::Finished(b"x".to_vec())),
        Next::Decode(b"x".to_vec())
    );
    assert_eq!(
        after_check(Check::Awaited { pttl_ms: 10 }),
        Next::Wait(LeaseLeft::Expires(ms(10)))
    );
    assert_eq!(
        after_check(Check::Awaited { pttl_ms: -1 }),
        Next::Wait(LeaseLeft::Never)
    );
    assert_eq!(
        after_check(Check::Other {
            holder: "n".into(),
            pttl_ms: 20
        }),
        Next::Follow {
            owner: "n".into(),
            lease: LeaseLeft::Expires(ms(20))
        }
    );
    assert_eq!(after_check(Check::Free), Next::Contend);
}

#[test]
fn waits_are_bounded() {
    let ms = Duration::from_millis;
    let mut b = NO_TTL_FIRST_WAIT;
    let e = LeaseLeft::Expires;
    assert_eq!(
        next_wait(e(ms(100)), &mut b, ms(1000), ms(5000)),
        Some(ms(105))
    );
    assert_eq!(
        next_wait(e(ms(10_000)), &mut b, ms(1000), ms(5000)),
        Some(ms(1000))
    );
    assert_eq!(
        next_wait(e(ms(10_000)), &mut b, ms(1000), ms(30)),
        Some(ms(30))
    );
    assert_eq!(next_wait(e(ms(10)), &mut b, ms(1000), Duration::ZERO), None);
}

#[test]
fn a_lease_without_ttl_is_checked_with_a_bounded_back_off() {
    let ms = Duration::from_millis;
    let mut b = NO_TTL_FIRST_WAIT;
    let waits: Vec<_> = (0..9)
        .map(|_| next_wait(LeaseLeft::Never, &mut b, ms(1000), ms(60_000)).unwrap())
        .collect();
    assert_eq!(
        waits,
        [10, 20, 40, 80, 160, 320, 640, 1000, 1000].map(ms).to_vec()
    );
    // A lease with a TTL starts the back-off again.
    next_wait(LeaseLeft::Expires(ms(5)), &mut b, ms(1000), ms(60_000));
    assert_eq!(
        next_wait(LeaseLeft::Never, &mut b, ms(1000), ms(60_000)),
        Some(ms(10))
    );
}

#[test]
fn panic_messages() {
    assert_eq!(panic_message(&"a"), "a");
    assert_eq!(panic_message(&String::from("b")), "b");
    assert_eq!(panic_message(&1u8), "<non-string panic payload>");
}
