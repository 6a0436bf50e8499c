//! What a `Receiver` is beyond a future: `Send + Sync + Unpin + 'static`, usable in
//! `futures::select!` (`FusedFuture`), and able to tell whether its value is there.

use futures::future::FusedFuture;
use single_flight::{KeyedGroup, Receiver, WithRole};

fn assert_traits<T: Send + Sync + Unpin + 'static + FusedFuture>() {}

#[test]
fn receivers_are_send_sync_unpin_and_fused() {
    assert_traits::<Receiver<u32>>();
    assert_traits::<WithRole<String>>();
}

/// In a `select!` loop, a receiver that has returned its value is skipped from then on.
#[test]
fn receiver_in_select_loop() {
    let group = KeyedGroup::<u8, u32>::new();
    let mut rx = group.do_chan(1, |_| async { 11 });
    let mut ticks = futures::StreamExt::fuse(futures::stream::iter(0..3));
    let mut got = None;
    let mut ticked = 0;
    futures_lite::future::block_on(async {
        loop {
            futures::select! {
                value = rx => got = Some(value),
                tick = futures::StreamExt::next(&mut ticks) => match tick {
                    Some(_) => ticked += 1,
                    None => break,
                },
            }
        }
    });
    assert_eq!(got, Some(11));
    assert!(rx.is_terminated());
    assert!(rx.is_finished());
    assert_eq!(ticked, 3);
    assert_eq!(group.in_flight(), 0);
}

/// `is_finished` turns true once the flight has ended, before the receiver is polled.
#[test]
fn is_finished_reports_the_flights_end() {
    let group = KeyedGroup::<u8, u32>::new();
    let first = group.do_chan(1, |_| async { 2 });
    let second = group.do_chan(1, |_| async { unreachable!("joins") });
    assert!(!first.is_finished());
    assert!(!second.is_finished());
    assert_eq!(futures_lite::future::block_on(first), 2);
    assert!(second.is_finished());
    assert_eq!(futures_lite::future::block_on(second), 2);
}
