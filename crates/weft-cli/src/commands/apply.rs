//! `weft apply -f FILE`: validates every document locally (for errors that
//! name the file), then writes them all in one API call — all or nothing.

use std::io::Read;

use anyhow::Context;
use weft_api::{
    document::parse_resources,
    rest::{ApplyOutcome, ApplyRequest, ApplyResponse},
};

use crate::cli::ApplyArgs;

pub async fn run(args: ApplyArgs) -> anyhow::Result<()> {
    let (source, text) = read_input(&args.file)?;
    let resources =
        parse_resources(&text).with_context(|| format!("{source}: nothing was applied"))?;
    let client = args.cp.client()?;
    let request = ApplyRequest {
        resources: resources.iter().map(|r| r.to_value()).collect(),
    };
    let response: ApplyResponse = client
        .post("/apply", &request)
        .await
        .with_context(|| format!("{source}: nothing was applied"))?;
    for r in &response.results {
        let outcome = match r.outcome {
            ApplyOutcome::Created => "created",
            ApplyOutcome::Updated => "updated",
            ApplyOutcome::Unchanged => "unchanged",
        };
        match &r.mesh {
            Some(mesh) => println!(
                "{} {mesh}/{} {outcome}",
                r.kind.as_str().to_lowercase(),
                r.name
            ),
            None => println!("{} {} {outcome}", r.kind.as_str().to_lowercase(), r.name),
        }
    }
    Ok(())
}

fn read_input(path: &std::path::Path) -> anyhow::Result<(String, String)> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read standard input")?;
        return Ok(("<stdin>".into(), text));
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok((path.display().to_string(), text))
}
