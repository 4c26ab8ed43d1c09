//! `weft tap dataplane NAME`: the requests passing one proxy, one line
//! each as they finish, until Ctrl-C or the tap ends. The control plane
//! relays them from the proxy (`GET .../tap`, NDJSON), so this works from
//! any host that reaches the API.

mod format;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use http_body_util::BodyExt;
use weft_api::rest::TapLine;

use crate::cli::CpArgs;

#[derive(Debug, Subcommand)]
pub enum TapCommand {
    /// Show the requests passing one Dataplane's proxy as they finish, until Ctrl-C.
    Dataplane(TapArgs),
}

#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum TapOutput {
    /// `time direction source -> destination METHOD authority path status latency`.
    #[default]
    Text,
    /// The control plane's JSON lines, as they come.
    Json,
}

#[derive(Debug, Args)]
pub struct TapArgs {
    /// The Dataplane's name.
    pub name: String,
    #[arg(short, long, default_value = "default")]
    pub mesh: String,
    /// Only requests whose path starts with this, e.g. `/api`.
    #[arg(long)]
    pub path: Option<String>,
    /// Only requests with this method, e.g. `POST`.
    #[arg(long)]
    pub method: Option<String>,
    #[arg(short, long, value_enum, default_value_t)]
    pub output: TapOutput,
    #[command(flatten)]
    pub cp: CpArgs,
}

pub async fn run(command: TapCommand) -> anyhow::Result<()> {
    let TapCommand::Dataplane(args) = command;
    if let Some(path) = &args.path
        && !path.starts_with('/')
    {
        bail!("--path {path:?} must start with '/'");
    }
    let client = args.cp.client()?;
    let path = tap_path(&args);
    let response = client.get_streaming(&path).await?;
    let mut body = response.into_body();
    let mut buffer = Vec::new();
    loop {
        let frame = tokio::select! {
            () = weft_sidecar::shutdown::signal_received() => return Ok(()),
            frame = body.frame() => frame,
        };
        let Some(frame) = frame else {
            bail!("the control plane ended the tap");
        };
        let frame = frame.context("the tap stream broke")?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buffer.extend_from_slice(&data);
        while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            if let Some(ended) = show(&args, &line[..end])? {
                bail!("the tap ended: {ended}");
            }
        }
    }
}

/// Prints one NDJSON line; `Some(reason)` when it ends the tap.
fn show(args: &TapArgs, line: &[u8]) -> anyhow::Result<Option<String>> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let parsed: TapLine = serde_json::from_slice(line).with_context(|| {
        format!(
            "unexpected line from the control plane: {}",
            String::from_utf8_lossy(line)
        )
    })?;
    if matches!(args.output, TapOutput::Json) {
        println!("{}", String::from_utf8_lossy(line));
    }
    match parsed {
        TapLine::Started { dataplane } => {
            eprintln!(
                "tapping dataplane {dataplane} in mesh {}{} (Ctrl-C to stop)",
                args.mesh,
                format::filter_note(args.path.as_deref(), args.method.as_deref())
            );
        }
        TapLine::Request(request) => {
            if matches!(args.output, TapOutput::Text) {
                println!("{}", format::request_line(&request));
            }
        }
        TapLine::Dropped { count } => {
            eprintln!("({count} matching requests not shown: this tap fell behind)");
        }
        TapLine::Ended { reason } => return Ok(Some(reason)),
    }
    Ok(None)
}

fn tap_path(args: &TapArgs) -> String {
    let mut query = Vec::new();
    if let Some(path) = &args.path {
        query.push(format!("path={}", format::encode_query(path)));
    }
    if let Some(method) = &args.method {
        query.push(format!("method={}", format::encode_query(method)));
    }
    let base = format!(
        "/meshes/{}/dataplanes/{}/tap",
        format::encode_query(&args.mesh),
        format::encode_query(&args.name)
    );
    if query.is_empty() {
        base
    } else {
        format!("{base}?{}", query.join("&"))
    }
}
