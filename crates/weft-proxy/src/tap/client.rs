//! The proxy's side of the `Tap` stream: opened once the config stream is
//! up, run until that session ends (the agent aborts it then, and opens a
//! new one with the next session). Commands start and stop taps on the
//! [`TapHub`]; every second the drops are reported, and every 30 s the
//! proxy's clock (for `weft check`).

use std::{sync::Arc, time::Duration};

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, transport::Channel};
use tracing::{debug, info, warn};
use weft_api::proto::{
    TapCommand, TapDropped, TapEnded, TapEvent, TapHello, TapStarted,
    dataplane_discovery_client::DataplaneDiscoveryClient, tap_command, tap_event,
};

use super::{TapFilter, TapHub};

/// Events queued for the control plane before requests are dropped.
const OUT_QUEUE: usize = 1024;
/// How often drops are reported.
const REPORT_EVERY: Duration = Duration::from_secs(1);
/// How often the proxy's clock is sent, in reports.
const CLOCK_EVERY_REPORTS: u32 = 30;

/// Who this proxy is on the Tap stream.
#[derive(Debug, Clone)]
pub struct TapIdentity {
    pub mesh: String,
    pub dataplane: String,
    pub token: String,
}

/// Stops the stream's taps however the session ends (aborted included).
struct StopOnDrop {
    hub: Arc<TapHub>,
    out: mpsc::Sender<TapEvent>,
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.hub.stop_stream(&self.out);
    }
}

/// One Tap stream over `channel`, until it ends.
pub async fn run_session(channel: Channel, who: TapIdentity, hub: Arc<TapHub>) {
    let (out, outgoing) = mpsc::channel(OUT_QUEUE);
    let hello = TapHello {
        mesh: who.mesh,
        dataplane: who.dataplane,
        token: who.token,
        wall_clock_unix_ms: now_unix_ms(),
    };
    if out
        .send(event(tap_event::Kind::Hello(hello)))
        .await
        .is_err()
    {
        return;
    }
    let mut commands = match DataplaneDiscoveryClient::new(channel)
        .tap(ReceiverStream::new(outgoing))
        .await
    {
        Ok(response) => response.into_inner(),
        Err(status) if status.code() == Code::Unimplemented => {
            info!(
                "the control plane does not support tapping; `weft tap` will not reach this proxy"
            );
            return;
        }
        Err(status) => {
            warn!(code = ?status.code(), message = status.message(), "cannot open the tap stream; retrying with the next control-plane session");
            return;
        }
    };
    debug!("tap stream open");
    let _stop = StopOnDrop {
        hub: hub.clone(),
        out: out.clone(),
    };
    let mut report = tokio::time::interval(REPORT_EVERY);
    let mut reports = 0u32;
    loop {
        tokio::select! {
            command = commands.message() => match command {
                Ok(Some(command)) => handle(&hub, &out, command).await,
                Ok(None) => return,
                Err(status) => {
                    debug!(error = %status, "tap stream ended");
                    return;
                }
            },
            _ = report.tick() => {
                reports = reports.wrapping_add(1);
                if reports.is_multiple_of(CLOCK_EVERY_REPORTS)
                    && out.send(event(tap_event::Kind::WallClockUnixMs(now_unix_ms()))).await.is_err()
                {
                    return;
                }
                for (tap_id, count) in hub.take_dropped() {
                    let dropped = event(tap_event::Kind::Dropped(TapDropped { tap_id, count }));
                    if out.send(dropped).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// Starts or stops one tap and tells the control plane what became of it.
async fn handle(hub: &TapHub, out: &mpsc::Sender<TapEvent>, command: TapCommand) {
    let reply = match command.kind {
        Some(tap_command::Kind::Start(start)) => {
            let id = start.tap_id;
            let started = TapFilter::parse(&start.path_prefix, &start.method)
                .and_then(|filter| hub.start(id, filter, out.clone()));
            match started {
                Ok(()) => {
                    info!(tap = id, path = %start.path_prefix, method = %start.method, "tap started");
                    tap_event::Kind::Started(TapStarted { tap_id: id })
                }
                Err(reason) => {
                    warn!(tap = id, %reason, "tap refused");
                    tap_event::Kind::Ended(TapEnded { tap_id: id, reason })
                }
            }
        }
        Some(tap_command::Kind::Stop(stop)) => {
            if hub.stop(stop.tap_id) {
                info!(tap = stop.tap_id, "tap stopped");
            }
            return;
        }
        None => return,
    };
    // Only fails when the stream is gone, which ends the session anyway.
    let _ = out.send(event(reply)).await;
}

fn event(kind: tap_event::Kind) -> TapEvent {
    TapEvent { kind: Some(kind) }
}

/// This host's wall clock in unix milliseconds.
fn now_unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
