//! Bodies: over the buffering cap, and large streamed ones.

use super::*;

/// A body of `len` bytes (`i % 251` at offset `i`, shifted by `seed`), in chunks of `chunk`
/// bytes, that yields to the executor between chunks: a large body streamed by the upstream.
struct Pattern {
    seed: usize,
    sent: usize,
    len: usize,
    chunk: usize,
    yielded: bool,
}

fn pattern_byte(seed: usize, i: usize) -> u8 {
    ((i + seed) % 251) as u8
}

impl Body for Pattern {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.sent == self.len {
            return Poll::Ready(None);
        }
        if !self.yielded {
            self.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.yielded = false;
        let end = (self.sent + self.chunk).min(self.len);
        let chunk: Vec<u8> = (self.sent..end)
            .map(|i| pattern_byte(self.seed, i))
            .collect();
        self.sent = end;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(chunk)))))
    }
}

fn pattern(seed: usize, len: usize) -> UpBody {
    Pattern {
        seed,
        sent: 0,
        len,
        chunk: 16 * 1024,
        yielded: false,
    }
    .boxed()
}

fn assert_pattern(body: &[u8], seed: usize, len: usize) {
    assert_eq!(body.len(), len);
    if let Some(i) = (0..len).find(|&i| body[i] != pattern_byte(seed, i)) {
        panic!("byte {i} of the body is wrong");
    }
}

/// Semantics 2: over the cap, the leader streams its whole body, the others send their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_cap_reaches_every_client_whole() {
    const N: usize = 5;
    const LEN: usize = 100_000;
    // No `Content-Length`: the cap is crossed while buffering.
    let fx = start(layer().max_body_bytes(10_000), N, |n, _| {
        Ok(Response::new(pattern(n, LEN)))
    })
    .await;
    let requests = (0..N)
        .map(|_| get(fx.addr, "/big").body(empty()).unwrap())
        .collect();
    let got = all_at_once(requests).await;
    assert_eq!(fx.calls(), N);
    assert_eq!(roles(&got), [1, 0, N - 1, 0]);
    let mut seeds = Vec::new();
    for g in &got {
        // Each body is one call's, whole: find its seed from its first byte.
        let seed = g.body[0] as usize;
        assert_pattern(&g.body, seed, LEN);
        seeds.push(seed);
    }
    seeds.sort();
    assert_eq!(seeds, (0..N).collect::<Vec<_>>());

    // A declared `Content-Length` over the cap is not even buffered.
    let fx = start(layer().max_body_bytes(10_000), 3, |n, _| {
        Ok(Response::builder()
            .header("content-length", LEN)
            .body(pattern(n, LEN))
            .unwrap())
    })
    .await;
    let requests = (0..3)
        .map(|_| get(fx.addr, "/big").body(empty()).unwrap())
        .collect();
    let got = all_at_once(requests).await;
    assert_eq!(fx.calls(), 3);
    for g in &got {
        assert_pattern(&g.body, g.body[0] as usize, LEN);
    }
}

/// Semantics 2: a large body, shared under the cap and streamed through over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_streamed_body_arrives_intact() {
    const LEN: usize = 8 << 20;
    // Under the cap: buffered once, shared by all.
    let fx = start(layer().max_body_bytes(16 << 20), 4, |n, _| {
        Ok(Response::new(pattern(n, LEN)))
    })
    .await;
    let requests = (0..4)
        .map(|_| get(fx.addr, "/dump").body(empty()).unwrap())
        .collect();
    let got = all_at_once(requests).await;
    assert_eq!(fx.calls(), 1);
    assert_eq!(roles(&got), [1, 3, 0, 0]);
    for g in &got {
        assert_pattern(&g.body, 0, LEN);
    }

    // Over the default cap (1 MiB), alone: streamed through untouched.
    let fx = start(layer(), 1, |n, _| Ok(Response::new(pattern(n, LEN)))).await;
    let got = all_at_once(vec![get(fx.addr, "/dump").body(empty()).unwrap()]).await;
    assert_eq!(fx.calls(), 1);
    assert_eq!(got[0].role(), "leader");
    assert_pattern(&got[0].body, 0, LEN);
}
