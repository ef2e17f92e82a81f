//! Panics caught at task boundaries, as text for the error that reports them.
//!
//! A panic is a bug; where one would otherwise lose a run or an object silently, the task that
//! ran it is joined and the panic becomes an ordinary, counted, logged error.

/// What a joined task's failure says: the panic message, or that it was cancelled.
pub fn message(e: tokio::task::JoinError) -> String {
    if !e.is_panic() {
        return "the task was cancelled".into();
    }
    let payload = e.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_message_is_kept() {
        let e = tokio::spawn(async { panic!("boom {}", 7) })
            .await
            .unwrap_err();
        assert_eq!(message(e), "boom 7");
        let e = tokio::spawn(async { std::panic::panic_any(5u8) })
            .await
            .unwrap_err();
        assert_eq!(message(e), "a panic without a message");
    }
}
