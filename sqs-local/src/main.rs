//! `sqs-local`: an SQS-compatible server.
//!
//! Run with `cargo run --release -p sqs-local --features cli -- --port 9324 --queue jobs`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;

const USAGE: &str = "\
usage: sqs-local [--bind ADDR] [--port PORT] [--advertise URL] [--region REGION]
                 [--account ID] [--latency SPEC] [--queue NAME]...

  --bind ADDR      address to listen on (default 127.0.0.1)
  --port PORT      port to listen on (default 9324; 0 picks a free one)
  --advertise URL  what queue URLs start with, for clients that reach the server by another
                   name (default http://ADDR:PORT, 127.0.0.1 for an unspecified ADDR)
  --region REGION  region of the --queue queues and of unsigned requests (default us-east-1);
                   a signed request acts in the region it was signed for
  --account ID     the 12-digit account that owns the queues (default 000000000000)
  --latency SPEC   delay every call as SQS would: a profile (aws: receive 10-20 ms, send,
                   delete and visibility 6-10 ms, other calls 10-30 ms) and/or
                   OPERATION=DELAY items, for example receive=15ms,send=8ms,delete=8ms;
                   OPERATION is receive, send, delete, visibility, * or an SQS operation
                   name; DELAY is 15ms, 10ms..20ms or 15ms+-5ms (default: none)
  --queue NAME     a queue to create at start; repeat for more; a name ending in .fifo is FIFO
  -h, --help       this text

Logging follows RUST_LOG (default info). Point clients at it with
AWS_ENDPOINT_URL_SQS=http://127.0.0.1:9324 and any credentials.";

#[derive(Debug)]
struct Args {
    bind: IpAddr,
    port: u16,
    advertise: Option<String>,
    region: Option<String>,
    account: Option<String>,
    latency: Option<sqs_local::Latency>,
    queues: Vec<String>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut out = Args {
        bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: 9324,
        advertise: None,
        region: None,
        account: None,
        latency: None,
        queues: Vec::new(),
    };
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--bind" => {
                let v = value("--bind")?;
                out.bind = v.parse().map_err(|_| {
                    format!("--bind {v:?} is not an IP address (for example 127.0.0.1)")
                })?;
            }
            "--port" => {
                let v = value("--port")?;
                out.port = v
                    .parse()
                    .map_err(|_| format!("--port {v:?} is not a port number (0 to 65535)"))?;
            }
            "--advertise" => {
                let v = value("--advertise")?;
                if !v.starts_with("http://") && !v.starts_with("https://") {
                    return Err(format!(
                        "--advertise {v:?} is not a URL (for example http://sqs.local:9324)"
                    ));
                }
                out.advertise = Some(v);
            }
            "--region" => out.region = Some(value("--region")?),
            "--account" => {
                let v = value("--account")?;
                if v.len() != 12 || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!("--account {v:?} is not a 12-digit account id"));
                }
                out.account = Some(v);
            }
            "--latency" => {
                let v = value("--latency")?;
                out.latency = Some(v.parse().map_err(|e| format!("--latency {v:?}: {e}"))?);
            }
            "--queue" => out.queues.push(value("--queue")?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(out))
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("sqs-local: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut builder = sqs_local::LocalSqs::builder().bind(SocketAddr::new(args.bind, args.port));
    if let Some(url) = args.advertise {
        builder = builder.advertised_url(url);
    }
    if let Some(region) = args.region {
        builder = builder.region(region);
    }
    if let Some(account) = args.account {
        builder = builder.account_id(account);
    }
    if let Some(latency) = args.latency {
        tracing::info!(%latency, "simulated latency");
        builder = builder.latency(latency);
    }
    for q in args.queues {
        builder = builder.queue(q);
    }
    let server = match builder.start().await {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "sqs-local: cannot start on {}:{}: {e}",
                args.bind, args.port
            );
            return ExitCode::FAILURE;
        }
    };
    println!("sqs-local listening on {}", server.endpoint_url());
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("sqs-local: cannot wait for Ctrl-C: {e}");
    }
    server.shutdown().await;
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Args>, String> {
        parse_args(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn latency_flag_parses_or_names_what_is_wrong() {
        let args = parse(&["--latency", "aws"]).unwrap().unwrap();
        assert_eq!(args.latency, Some(sqs_local::Latency::aws()));
        assert_eq!(
            parse(&["--latency", "recieve=15ms"]).unwrap_err(),
            "--latency \"recieve=15ms\": \"recieve\" is not an operation: use receive, send, delete, visibility, * or an SQS operation name such as ReceiveMessage"
        );
        assert_eq!(
            parse(&["--latency", "send=8"]).unwrap_err(),
            "--latency \"send=8\": send=\"8\": a duration needs a unit: ms, s or us (for example 15ms)"
        );
        assert_eq!(
            parse(&["--latency"]).unwrap_err(),
            "--latency needs a value"
        );
    }
}
