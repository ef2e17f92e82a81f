//! Delivery: getting an object into the sink, or failing that into the spool, and draining the
//! spool in order once the sink answers again.
//!
//! While the spool holds anything, new objects queue behind it, so objects reach S3 in the
//! order they were collected. One upload goes at a time (the *lane*): an object that comes
//! while an earlier one is still being tried (a slow or black-holed S3) is spooled at once
//! rather than waiting, so a slow S3 costs latency, never a snapshot. An object is only ever
//! reported lost when neither the sink nor the spool would take it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, Notify};
use tokio_util::sync::CancellationToken;

use crate::sink::{Sink, SinkError};
use crate::spool::{Spool, SpoolError};

mod object;
pub use object::Object;

/// Where an object ended up.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivered {
    Stored,
    /// Kept in the spool, to be uploaded later.
    Spooled(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("{0}")]
    Sink(#[from] SinkError),
    #[error("{upload}; and it could not be spooled: {spool}")]
    Lost {
        upload: SinkError,
        spool: SpoolError,
    },
    #[error("{0}")]
    Spool(#[from] SpoolError),
}

/// What one pass over the spool did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FlushReport {
    pub stored: usize,
    pub left: usize,
}

pub struct Delivery {
    sink: Arc<dyn Sink>,
    spool: Option<Spool>,
    /// Held by the upload under way (a direct one or a spool drain): one at a time, so no entry
    /// is uploaded twice concurrently and objects keep their order.
    lane: Mutex<()>,
    kick: Notify,
}

impl Delivery {
    pub fn new(sink: Arc<dyn Sink>, spool: Option<Spool>) -> Delivery {
        Delivery {
            sink,
            spool,
            lane: Mutex::new(()),
            kick: Notify::new(),
        }
    }

    pub fn describe(&self) -> String {
        self.sink.describe()
    }

    pub fn spool(&self) -> Option<&Spool> {
        self.spool.as_ref()
    }

    pub async fn deliver(&self, object: Object) -> Result<Delivered, DeliveryError> {
        let Some(spool) = &self.spool else {
            self.put(&object).await?;
            return Ok(Delivered::Stored);
        };
        let lane = self.lane.try_lock();
        if lane.is_err() || !spool.entries()?.is_empty() {
            let path = spool.push(&object)?;
            if lane.is_err() {
                tracing::warn!(
                    key = object.key,
                    "an earlier upload is still being tried: object spooled, to follow it"
                );
            }
            self.kick.notify_one();
            return Ok(Delivered::Spooled(path));
        }
        match self.put(&object).await {
            Ok(()) => Ok(Delivered::Stored),
            Err(upload) => match spool.push(&object) {
                Ok(path) => {
                    tracing::error!(
                        key = object.key,
                        spooled = %path.display(),
                        "upload failed, object kept in the spool for later: {upload}"
                    );
                    Ok(Delivered::Spooled(path))
                }
                Err(spool) => Err(DeliveryError::Lost { upload, spool }),
            },
        }
    }

    /// Uploads spooled objects oldest first; stops at the first that fails (keeping it).
    pub async fn flush(&self) -> Result<FlushReport, DeliveryError> {
        self.flush_until(&CancellationToken::new()).await
    }

    /// [`Delivery::flush`], stopping between two entries once `stop` is cancelled: an upload
    /// under way is finished, never cut.
    pub async fn flush_until(
        &self,
        stop: &CancellationToken,
    ) -> Result<FlushReport, DeliveryError> {
        let Some(spool) = &self.spool else {
            return Ok(FlushReport::default());
        };
        let _lane = self.lane.lock().await;
        let entries = spool.entries()?;
        let mut report = FlushReport {
            stored: 0,
            left: entries.len(),
        };
        for path in entries {
            if stop.is_cancelled() {
                break;
            }
            let object = match spool.read(&path) {
                Ok(o) => o,
                Err(e @ SpoolError::Corrupt { .. }) => {
                    tracing::error!("{e}");
                    report.left -= 1;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            if let Err(e) = self.put(&object).await {
                // Objects spooled while this pass ran are waiting too.
                report.left = spool.entries().map_or(report.left, |e| e.len());
                tracing::warn!(
                    key = object.key,
                    left = report.left,
                    "spool not drained yet: {e}"
                );
                return Ok(report);
            }
            spool.remove(&path)?;
            tracing::info!(key = object.key, "stored from the spool");
            report.stored += 1;
            report.left -= 1;
        }
        // Objects spooled while this pass ran are left for the next one.
        report.left = spool.entries()?.len();
        Ok(report)
    }

    /// Uploads on a task of its own: a panic in the sink (a bug) is then an upload error, and
    /// the object goes to the spool like after any other failed upload.
    async fn put(&self, object: &Object) -> Result<(), SinkError> {
        let (sink, object) = (self.sink.clone(), object.clone());
        tokio::spawn(async move { sink.put(&object).await })
            .await
            .unwrap_or_else(|e| Err(SinkError::Panicked(crate::panics::message(e))))
    }

    /// Drains the spool every `interval`, or at once when an object is queued behind it, until
    /// `stop` is cancelled (after the entry being uploaded then).
    pub async fn run_flusher(&self, interval: Duration, stop: CancellationToken) {
        while !stop.is_cancelled() {
            if let Err(e) = self.flush_until(&stop).await {
                tracing::error!("spool: {e}");
            }
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = tokio::time::timeout(interval, self.kick.notified()) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use std::sync::Mutex as StdMutex;

    /// A sink that is up or down on demand and remembers what it stored; it can also hold each
    /// upload until released, or panic.
    #[derive(Default)]
    struct Switch {
        down: StdMutex<bool>,
        panics: StdMutex<bool>,
        hold: StdMutex<Option<Arc<tokio::sync::Semaphore>>>,
        stored: StdMutex<Vec<String>>,
    }

    #[async_trait]
    impl Sink for Switch {
        async fn put(&self, o: &Object) -> Result<(), SinkError> {
            let hold = self.hold.lock().unwrap().clone();
            if let Some(gate) = hold {
                let _pass = gate.acquire().await.unwrap();
            }
            if *self.panics.lock().unwrap() {
                panic!("sink bug");
            }
            if *self.down.lock().unwrap() {
                return Err(SinkError::Stdout(std::io::Error::other("down")));
            }
            self.stored.lock().unwrap().push(o.key.clone());
            Ok(())
        }
        fn describe(&self) -> String {
            "switch".into()
        }
    }

    fn object(key: &str) -> Object {
        Object {
            key: key.into(),
            body: key.as_bytes().to_vec().into(),
            content_type: "text/plain".into(),
            metadata: vec![],
        }
    }

    #[tokio::test]
    async fn an_outage_loses_nothing_and_keeps_the_order() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Arc::new(Switch::default());
        let d = Delivery::new(
            sink.clone(),
            Some(Spool::open(dir.path(), 1 << 20).unwrap()),
        );
        assert_eq!(d.deliver(object("a")).await.unwrap(), Delivered::Stored);
        *sink.down.lock().unwrap() = true;
        assert!(matches!(
            d.deliver(object("b")).await.unwrap(),
            Delivered::Spooled(_)
        ));
        assert_eq!(d.flush().await.unwrap(), FlushReport { stored: 0, left: 1 });
        *sink.down.lock().unwrap() = false;
        // The sink is back, but "c" queues behind "b".
        assert!(matches!(
            d.deliver(object("c")).await.unwrap(),
            Delivered::Spooled(_)
        ));
        assert_eq!(d.flush().await.unwrap(), FlushReport { stored: 2, left: 0 });
        assert_eq!(*sink.stored.lock().unwrap(), ["a", "b", "c"]);
        assert_eq!(d.deliver(object("d")).await.unwrap(), Delivered::Stored);
    }

    #[tokio::test]
    async fn an_object_that_comes_while_an_upload_hangs_is_spooled_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Arc::new(Switch::default());
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        *sink.hold.lock().unwrap() = Some(gate.clone());
        let d = Arc::new(Delivery::new(
            sink.clone(),
            Some(Spool::open(dir.path(), 1 << 20).unwrap()),
        ));
        let first = tokio::spawn({
            let d = d.clone();
            async move { d.deliver(object("a")).await.unwrap() }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!first.is_finished(), "the first upload hangs");
        // The second object does not wait for the first upload.
        let second = tokio::time::timeout(Duration::from_secs(5), d.deliver(object("b")))
            .await
            .expect("not held up by the hanging upload")
            .unwrap();
        assert!(matches!(second, Delivered::Spooled(_)), "{second:?}");
        gate.add_permits(10);
        assert_eq!(first.await.unwrap(), Delivered::Stored);
        assert_eq!(d.flush().await.unwrap(), FlushReport { stored: 1, left: 0 });
        assert_eq!(*sink.stored.lock().unwrap(), ["a", "b"]);
    }

    #[tokio::test]
    async fn a_failed_flush_counts_what_was_spooled_while_it_ran() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Arc::new(Switch::default());
        let d = Arc::new(Delivery::new(
            sink.clone(),
            Some(Spool::open(dir.path(), 1 << 20).unwrap()),
        ));
        *sink.down.lock().unwrap() = true;
        assert!(matches!(
            d.deliver(object("a")).await.unwrap(),
            Delivered::Spooled(_)
        ));
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        *sink.hold.lock().unwrap() = Some(gate.clone());
        let flush = tokio::spawn({
            let d = d.clone();
            async move { d.flush().await.unwrap() }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(matches!(
            d.deliver(object("b")).await.unwrap(),
            Delivered::Spooled(_)
        ));
        gate.add_permits(10);
        assert_eq!(flush.await.unwrap(), FlushReport { stored: 0, left: 2 });
    }

    #[tokio::test]
    async fn a_panicking_upload_spools_its_object() {
        let dir = tempfile::tempdir().unwrap();
        let sink = Arc::new(Switch::default());
        *sink.panics.lock().unwrap() = true;
        let d = Delivery::new(
            sink.clone(),
            Some(Spool::open(dir.path(), 1 << 20).unwrap()),
        );
        assert!(matches!(
            d.deliver(object("a")).await.unwrap(),
            Delivered::Spooled(_)
        ));
        *sink.panics.lock().unwrap() = false;
        assert_eq!(d.flush().await.unwrap(), FlushReport { stored: 1, left: 0 });
        assert_eq!(*sink.stored.lock().unwrap(), ["a"]);
    }

    #[tokio::test]
    async fn without_spool_or_room_a_failure_is_an_error_naming_both_causes() {
        let sink = Arc::new(Switch::default());
        *sink.down.lock().unwrap() = true;
        let d = Delivery::new(sink.clone(), None);
        assert!(matches!(
            d.deliver(object("a")).await,
            Err(DeliveryError::Sink(_))
        ));

        let dir = tempfile::tempdir().unwrap();
        let d = Delivery::new(sink, Some(Spool::open(dir.path(), 10).unwrap()));
        let err = d.deliver(object("a")).await.unwrap_err();
        assert!(matches!(err, DeliveryError::Lost { .. }), "{err}");
        assert!(err.to_string().contains("down") && err.to_string().contains("full"));
    }
}
