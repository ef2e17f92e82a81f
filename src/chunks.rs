//! A body handed, chunk by chunk as it arrives, from the async side that receives it to a
//! parser that reads it as a blocking [`Read`] (in `spawn_blocking`). The channel between the
//! two holds a few chunks: memory stays bounded whatever the body's size, and the parse runs
//! while the rest of the body is still on the wire, with no temporary file in between.

use std::io::{self, Read};

use bytes::{Buf, Bytes};
use tokio::sync::mpsc;

use crate::http::HttpError;

/// A channel for one body of at most `limit` bytes, with at most `capacity` chunks in flight.
pub fn channel(capacity: usize, limit: u64) -> (ChunkSender, ChunkReader) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    (
        ChunkSender { tx, sent: 0, limit },
        ChunkReader {
            rx,
            current: Bytes::new(),
        },
    )
}

/// The async end. Dropping it ends the body: the reader then reads to its end and sees EOF.
pub struct ChunkSender {
    tx: mpsc::Sender<io::Result<Bytes>>,
    sent: u64,
    limit: u64,
}

impl ChunkSender {
    /// Passes a chunk on, waiting while the reader is behind. `Ok(false)`: the reader has
    /// stopped (its parse failed, and its error says why), so nothing more is worth sending.
    /// Past the limit, the body is refused: the reader gets an error, the caller `TooLarge`.
    pub async fn send(&mut self, chunk: Bytes) -> Result<bool, HttpError> {
        self.sent += chunk.len() as u64;
        if self.sent > self.limit {
            let e = HttpError::TooLarge { limit: self.limit };
            self.fail(io::Error::other(e.to_string())).await;
            return Err(e);
        }
        Ok(self.tx.send(Ok(chunk)).await.is_ok())
    }

    /// Ends the body with an error, which the reader returns instead of EOF: a body that
    /// failed on the wire must not read as one that ended there.
    pub async fn fail(&self, e: io::Error) {
        // A reader that has stopped already has its own error.
        let _ = self.tx.send(Err(e)).await;
    }
}

/// The blocking end: reads the chunks in order. Must not be read on an async worker thread.
pub struct ChunkReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    /// What is left of the chunk being read.
    current: Bytes,
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.current.len());
        out[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonwalk::Walker;
    use crate::usage;
    use crate::window::Window;

    /// Sends `body` cut at `cuts` (chunk ends, ascending) from the async side, as a response's
    /// chunks arrive, while `read` consumes it on a blocking thread; returns what `read` gave
    /// and what the sender saw.
    async fn through<T: Send + 'static>(
        body: &[u8],
        cuts: &[usize],
        limit: u64,
        read: impl FnOnce(ChunkReader) -> T + Send + 'static,
    ) -> (T, Result<(), HttpError>) {
        let (mut tx, rx) = channel(2, limit);
        let reader = tokio::task::spawn_blocking(move || read(rx));
        let mut sent = Ok(());
        let mut from = 0;
        for &to in cuts.iter().chain([&body.len()]) {
            match tx.send(Bytes::copy_from_slice(&body[from..to])).await {
                Ok(true) => from = to,
                Ok(false) => break,
                Err(e) => {
                    sent = Err(e);
                    break;
                }
            }
        }
        drop(tx);
        (reader.await.unwrap(), sent)
    }

    fn window() -> Window {
        let start = chrono::DateTime::from_timestamp(1_795_366_800, 0).unwrap();
        Window {
            start,
            end: start + chrono::TimeDelta::hours(1),
        }
    }

    /// A usage answer with multibyte names (2, 3 and 4 bytes a char) and long numbers, so that
    /// cuts fall inside characters, numbers, names and structure.
    const ANSWER: &str = r#"{"entries":[{"user":"été","buckets":[{"bucket":"日本-🪣","time":"","epoch":1795366800,"owner":"été","categories":[{"category":"get_obj","bytes_sent":123456789012,"bytes_received":98765,"ops":4321,"successful_ops":4320}]}]}],"summary":[{"user":"été","categories":[],"total":{"bytes_sent":123456789012,"bytes_received":98765,"ops":4321,"successful_ops":4320}}]}"#;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_body_cut_anywhere_reads_back_whole_and_parses_the_same() {
        let body = ANSWER.as_bytes();
        let whole = usage::parse(body, window(), true).unwrap();
        assert_eq!(&*whole.buckets.as_ref().unwrap()[0].bucket, "日本-🪣");
        for one in 1..body.len() {
            for two in [one, (one + 1).min(body.len()), (one + 7).min(body.len())] {
                // Small walker blocks: the walker's own cuts fall between the chunks' too.
                let parse = |r| {
                    let w = Walker::with_sizes(r, 5, 1 << 10);
                    usage::parse_walking(w, window(), true, 10)
                };
                let (report, sent) = through(body, &[one, two], 1 << 20, parse).await;
                sent.unwrap();
                assert_eq!(report.unwrap(), whole, "cut at {one} and {two}");
            }
        }
        let (bytes, _) = through(body, &[3, 3, 40], 1 << 20, |mut r| {
            let mut all = vec![];
            r.read_to_end(&mut all).map(|_| all)
        })
        .await;
        assert_eq!(bytes.unwrap(), body, "empty chunks are skipped, not EOF");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_error_mid_body_is_an_error_for_the_reader_not_an_end() {
        let body = ANSWER.as_bytes();
        let (mut tx, rx) = channel(4, 1 << 20);
        tx.send(Bytes::copy_from_slice(&body[..100])).await.unwrap();
        tx.fail(io::Error::other("connection reset mid-body")).await;
        drop(tx);
        let parsed =
            tokio::task::spawn_blocking(move || usage::parse_reader(rx, window(), true, 10))
                .await
                .unwrap();
        let err = parsed.unwrap_err();
        assert!(matches!(err, usage::UsageError::Read(_)), "{err:?}");
        assert!(
            err.to_string().contains("connection reset mid-body"),
            "{err}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_body_over_the_limit_is_refused_on_both_ends() {
        let body = ANSWER.as_bytes();
        let at_limit = body.len() as u64;
        let read_all = |mut r: ChunkReader| {
            let mut all = vec![];
            r.read_to_end(&mut all).map(|_| all)
        };
        let (bytes, sent) = through(body, &[10, 200], at_limit, read_all).await;
        assert_eq!((bytes.unwrap(), sent.is_ok()), (body.to_vec(), true));
        let (bytes, sent) = through(body, &[10, 200], at_limit - 1, read_all).await;
        let want = format!("response body exceeds the limit of {} bytes", at_limit - 1);
        assert_eq!(sent.unwrap_err().to_string(), want);
        assert_eq!(bytes.unwrap_err().to_string(), want);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_that_stops_stops_the_sender() {
        let (mut tx, rx) = channel(1, 1 << 20);
        drop(rx);
        assert!(!tx.send(Bytes::from_static(b"{")).await.unwrap());
    }
}
