//! Webhook notifications of approval steps: an HTTP POST of `{"text": ..., "event": {...}}`
//! (`text` makes it a Slack-compatible incoming-webhook payload; `event` is the step's audit
//! event). Sent from a task of its own through a bounded queue, so the hub never waits on the
//! network; a full queue drops the notification, and every failure is audited
//! (`approval-notify-failed`). The URL is treated as a secret (Slack's carry a token): it is
//! never logged nor put in an event.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::hub::Audit;
use crate::audit;

/// Notifications waiting to be sent before new ones are dropped.
pub const QUEUE: usize = 256;
/// How long one POST may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Sends notifications to one webhook.
#[derive(Clone)]
pub struct Notifier {
    queue: mpsc::Sender<Value>,
    audit: Arc<dyn Audit>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("webhook: {0}")]
pub struct NotifierError(String);

impl Notifier {
    /// Starts the sender task (on the current tokio runtime) for `url` (`http` or `https`).
    pub fn start(url: &str, audit: Arc<dyn Audit>) -> Result<Self, NotifierError> {
        let url =
            reqwest::Url::parse(url).map_err(|e| NotifierError(format!("invalid URL ({e})")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(NotifierError("the URL must be http or https".into()));
        }
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| NotifierError(format!("HTTP client: {}", e.without_url())))?;
        let (queue, mut pending) = mpsc::channel::<Value>(QUEUE);
        let sender_audit = Arc::clone(&audit);
        tokio::spawn(async move {
            while let Some(payload) = pending.recv().await {
                let failure = match client.post(url.clone()).json(&payload).send().await {
                    Ok(response) if response.status().is_success() => None,
                    Ok(response) => Some(format!("the webhook answered {}", response.status())),
                    Err(e) => Some(format!("cannot reach the webhook: {}", e.without_url())),
                };
                if let Some(failure) = failure {
                    tracing::warn!(%failure, "approval notification not delivered");
                    sender_audit.emit(audit::approval_notify_failed(&failure));
                }
            }
        });
        Ok(Self { queue, audit })
    }

    /// Queues a notification; never waits.
    pub fn notify(&self, text: &str, event: Value) {
        let payload = json!({ "text": text, "event": event });
        if self.queue.try_send(payload).is_err() {
            tracing::warn!("approval notification dropped: the queue is full");
            self.audit.emit(audit::approval_notify_failed(
                "too many notifications waiting: one was dropped",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::hub::tests::Recorder;
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// Accepts one HTTP/1.1 request and answers `status`; returns the request's body.
    async fn one_request(listener: tokio::net::TcpListener, status: &str) -> String {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let body = loop {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed early");
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if body.len() >= len {
                    assert!(head.starts_with("POST /hook"), "{head}");
                    break body.to_string();
                }
            }
        };
        let answer = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        stream.write_all(answer.as_bytes()).await.unwrap();
        body
    }

    #[tokio::test]
    async fn the_webhook_receives_the_text_and_the_event() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let server = tokio::spawn(one_request(listener, "200 OK"));
        let recorder = Arc::new(Recorder::default());
        let notifier = Notifier::start(&url, recorder.clone()).unwrap();
        notifier.notify(
            "request r-1 waits",
            json!({ "event": { "action": "approval-requested" } }),
        );
        let body: Value = serde_json::from_str(&server.await.unwrap()).unwrap();
        assert_eq!(body["text"], "request r-1 waits");
        assert_eq!(body["event"]["event"]["action"], "approval-requested");
        assert!(recorder.actions().is_empty());
    }

    #[tokio::test]
    async fn a_failing_webhook_is_audited_without_its_url() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/hook?token=s3cret",
            listener.local_addr().unwrap()
        );
        let server = tokio::spawn(one_request(listener, "500 Internal Server Error"));
        let (tx, mut events) = mpsc::unbounded_channel();
        let notifier = Notifier::start(&url, Arc::new(Channel(tx))).unwrap();
        notifier.notify("x", json!({}));
        server.await.unwrap();
        let event = events.recv().await.unwrap();
        assert_eq!(event["event"]["action"], "approval-notify-failed");
        assert!(event.to_string().contains("500"), "{event}");
        assert!(!event.to_string().contains("s3cret"), "{event}");
        assert!(events.try_recv().is_err(), "one event");
    }

    /// Audit events into a channel, to await them.
    struct Channel(mpsc::UnboundedSender<Value>);

    impl Audit for Channel {
        fn emit(&self, event: Value) {
            let _ = self.0.send(event);
        }
    }

    #[test]
    fn only_http_urls_are_accepted() {
        let recorder: Arc<dyn Audit> = Arc::new(Recorder::default());
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let _guard = rt.enter();
        assert!(Notifier::start("ftp://x/y", recorder.clone()).is_err());
        assert!(Notifier::start("not a url", recorder).is_err());
    }
}
