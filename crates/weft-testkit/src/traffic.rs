//! Steady traffic for tests that change the mesh under load: requests back
//! to back over a keep-alive client, recording who answered and what failed.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use http_body_util::BodyExt;

use crate::servers;

/// What steady traffic saw: which app answered each request, and failures.
#[derive(Default)]
pub struct Observed {
    /// When each answer came and the first word of its body (the app name).
    pub answers: Vec<(Instant, String)>,
    pub failures: Vec<String>,
}

/// Sends requests back to back (with a 2 ms pause) over a keep-alive client until stopped.
pub struct Traffic {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Observed>>,
    task: tokio::task::JoinHandle<()>,
}

impl Traffic {
    pub fn start(url: String) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Observed::default()));
        let (s, o) = (stop.clone(), seen.clone());
        let task = tokio::spawn(async move {
            let client = servers::http_client();
            while !s.load(Ordering::Relaxed) {
                let result = async {
                    let resp = client.get(url.parse()?).await?;
                    let status = resp.status();
                    let body = resp.into_body().collect().await?.to_bytes();
                    let body = String::from_utf8_lossy(&body).into_owned();
                    anyhow::ensure!(status == 200, "{status}: {body}");
                    Ok(body)
                };
                match tokio::time::timeout(Duration::from_secs(5), result).await {
                    Ok(Ok(body)) => {
                        let app = body.split_whitespace().next().unwrap_or("").to_owned();
                        o.lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .answers
                            .push((Instant::now(), app));
                    }
                    Ok(Err(e)) => o
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .failures
                        .push(format!("{e:#}")),
                    Err(_) => o
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .failures
                        .push("timed out".into()),
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        Self { stop, seen, task }
    }

    pub async fn finish(self) -> Observed {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        std::mem::take(&mut *self.seen.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// When `app` first answered, if it has.
    pub fn first_answer_from(&self, app: &str) -> Option<Instant> {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .answers
            .iter()
            .find(|(_, a)| a == app)
            .map(|(t, _)| *t)
    }

    pub fn count(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .answers
            .len()
    }
}
