//! The pipe between a streamed scrape's render thread and its response
//! body: at most [`DEPTH`] chunks queued, the renderer waiting (on its own
//! thread) while the client is slow.
//!
//! Not a tokio channel, for two things it cannot do. A renderer that gives
//! up on a stalled client empties the queue, so what the stalled response
//! still holds is at most what hyper took (the HTTP/2 case: a peer that
//! grants no flow-control window never lets hyper poll the body again, and
//! the stream lives until its connection closes). And the body ends in an
//! error unless the renderer said it finished, so a renderer that stopped
//! for any reason (gave up, failed, panicked) can never end the body as a
//! shorter scrape Prometheus would read as series gone.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};

/// Chunks queued ahead of the socket.
pub const DEPTH: usize = 2;

/// How often a waiting renderer asks whether to give up.
const CHECK: Duration = Duration::from_millis(100);

/// A pipe: the renderer's end and the body's.
pub fn pipe() -> (Sender, Receiver) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::with_capacity(DEPTH),
            end: End::Open,
            waker: None,
            receiver_gone: false,
        }),
        room: Condvar::new(),
    });
    (
        Sender {
            shared: shared.clone(),
        },
        Receiver { shared },
    )
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when the body takes a chunk or goes away.
    room: Condvar,
}

struct State {
    queue: VecDeque<Bytes>,
    end: End,
    waker: Option<Waker>,
    receiver_gone: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    /// The renderer may still send.
    Open,
    /// Everything was sent: the body ends once the queue is empty.
    Finished,
    /// The renderer stopped short: the body ends in an error.
    Failed,
    /// The error was handed to the body.
    Reported,
}

/// The renderer's end. Dropped without [`Sender::finish`], the body ends
/// in an error.
pub struct Sender {
    shared: Arc<Shared>,
}

impl Sender {
    /// Queues `chunk`, waiting while [`DEPTH`] are queued. Every 100 ms of
    /// waiting, `give_up` is asked with how long this send has waited;
    /// when it says so, the queue is emptied, the body will end in an
    /// error, and `false` is returned, as it is when the body is gone.
    pub fn send(&self, chunk: Bytes, mut give_up: impl FnMut(Duration) -> bool) -> bool {
        let since = Instant::now();
        let mut state = self.shared.state.lock();
        loop {
            if state.receiver_gone {
                return false;
            }
            if state.queue.len() < DEPTH {
                state.queue.push_back(chunk);
                if let Some(w) = state.waker.take() {
                    w.wake();
                }
                return true;
            }
            self.shared.room.wait_for(&mut state, CHECK);
            if state.queue.len() >= DEPTH && give_up(since.elapsed()) {
                state.queue = VecDeque::new();
                state.end = End::Failed;
                if let Some(w) = state.waker.take() {
                    w.wake();
                }
                return false;
            }
        }
    }

    /// Whether a send gave up (rather than found the body gone).
    pub fn gave_up(&self) -> bool {
        matches!(self.shared.state.lock().end, End::Failed | End::Reported)
    }

    /// Everything was sent: the body ends cleanly after the queued chunks.
    pub fn finish(self) {
        let mut state = self.shared.state.lock();
        if state.end == End::Open {
            state.end = End::Finished;
        }
        if let Some(w) = state.waker.take() {
            w.wake();
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let mut state = self.shared.state.lock();
        if state.end == End::Open {
            state.end = End::Failed;
        }
        if let Some(w) = state.waker.take() {
            w.wake();
        }
    }
}

/// The body's end: the chunks, then the end the renderer gave.
pub struct Receiver {
    shared: Arc<Shared>,
}

impl futures_util::Stream for Receiver {
    type Item = std::io::Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut state = self.shared.state.lock();
        if let Some(chunk) = state.queue.pop_front() {
            self.shared.room.notify_one();
            return Poll::Ready(Some(Ok(chunk)));
        }
        match state.end {
            End::Open => {
                state.waker = Some(cx.waker().clone());
                Poll::Pending
            }
            End::Failed => {
                state.end = End::Reported;
                Poll::Ready(Some(Err(std::io::Error::other(
                    "scrape rendering stopped before the end",
                ))))
            }
            End::Finished | End::Reported => Poll::Ready(None),
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let mut state = self.shared.state.lock();
        state.receiver_gone = true;
        state.queue = VecDeque::new();
        self.shared.room.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    fn chunk(n: u8) -> Bytes {
        Bytes::from(vec![n])
    }

    #[tokio::test]
    async fn a_finished_pipe_ends_cleanly_after_its_chunks() {
        let (tx, mut rx) = pipe();
        let sender = std::thread::spawn(move || {
            for n in 0..5 {
                assert!(tx.send(chunk(n), |_| false));
            }
            tx.finish();
        });
        let mut got = Vec::new();
        while let Some(c) = rx.next().await {
            got.push(c.unwrap()[0]);
        }
        sender.join().unwrap();
        assert_eq!(got, [0, 1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn a_renderer_that_stops_short_ends_the_body_in_an_error() {
        let (tx, mut rx) = pipe();
        assert!(tx.send(chunk(0), |_| false));
        drop(tx);
        assert_eq!(rx.next().await.unwrap().unwrap()[0], 0);
        assert!(rx.next().await.unwrap().is_err());
        assert!(rx.next().await.is_none());
    }

    #[tokio::test]
    async fn giving_up_on_a_stalled_body_empties_the_queue() {
        let (tx, mut rx) = pipe();
        for n in 0..DEPTH as u8 {
            assert!(tx.send(chunk(n), |_| false));
        }
        let mut asked = Vec::new();
        assert!(!tx.send(chunk(9), |waited| {
            asked.push(waited);
            waited >= Duration::from_millis(250)
        }));
        assert!(asked.len() >= 3, "asked {asked:?}");
        assert!(tx.shared.state.lock().queue.is_empty());
        assert!(tx.gave_up());
        // What the body reads next is the error: no chunk, no clean end.
        assert!(rx.next().await.unwrap().is_err());
        assert!(rx.next().await.is_none());
    }

    #[test]
    fn a_gone_body_stops_the_renderer() {
        let (tx, rx) = pipe();
        drop(rx);
        assert!(!tx.send(chunk(0), |_| panic!("nothing to wait for")));
        assert!(!tx.gave_up());
    }
}
