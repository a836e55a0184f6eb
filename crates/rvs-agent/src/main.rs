//! `rvs-agent`: serves the REST API of rvs on localhost (or a unix socket,
//! or elsewhere with a bearer token), talking to rvsd's control socket.

use std::net::SocketAddr;
use std::process::ExitCode;

use rvs_agent::{app, openapi_json, AgentState};

const USAGE: &str =
    "usage: rvs-agent [--listen ADDR:PORT|unix:PATH] [--socket PATH] [--token-file FILE]
       rvs-agent --print-openapi
  --listen      where to serve (default 127.0.0.1:8082); a non-loopback address needs --token-file
  --socket      rvsd's control socket (default $RVS_SOCKET or /run/rvs/rvs.sock)
  --token-file  a file holding the token every request must carry as Authorization: Bearer <token>
  --print-openapi  print the OpenAPI document and exit";

enum Listen {
    Tcp(SocketAddr),
    Unix(String),
}

struct Args {
    listen: Listen,
    socket: String,
    token_file: Option<String>,
}

fn parse(argv: &[String]) -> Result<Option<Args>, String> {
    let mut a = Args {
        listen: Listen::Tcp(SocketAddr::from(([127, 0, 0, 1], 8082))),
        socket: rvs_api::socket_path(),
        token_file: None,
    };
    let mut it = argv.iter();
    while let Some(opt) = it.next() {
        let mut val = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match opt.as_str() {
            "--print-openapi" => {
                print!("{}", openapi_json());
                return Ok(None);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(None);
            }
            "--listen" => {
                let v = val("--listen")?;
                a.listen = match v.strip_prefix("unix:") {
                    Some(p) => Listen::Unix(p.to_string()),
                    None => Listen::Tcp(v.parse().map_err(|_| {
                        format!(
                            "--listen {v:?} is not ADDR:PORT ([ADDR]:PORT for IPv6) or unix:PATH"
                        )
                    })?),
                };
            }
            "--socket" => a.socket = val("--socket")?,
            "--token-file" => a.token_file = Some(val("--token-file")?),
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    Ok(Some(a))
}

fn read_token(path: &str) -> Result<String, String> {
    let t = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the token file {path}: {e}"))?;
    let t = t.trim().to_string();
    if t.len() < 16 {
        return Err(format!(
            "the token in {path} is shorter than 16 characters; use a long random one"
        ));
    }
    Ok(t)
}

async fn serve(args: Args) -> Result<(), String> {
    let token = args.token_file.as_deref().map(read_token).transpose()?;
    if let Listen::Tcp(addr) = &args.listen {
        if !addr.ip().is_loopback() && token.is_none() {
            return Err(format!(
                "refusing to listen on {addr}, which is not a loopback address, without --token-file FILE \
                 (every request then needs Authorization: Bearer <token>)"
            ));
        }
    }
    let router = app(AgentState::new(args.socket.as_str(), token));
    match args.listen {
        Listen::Tcp(addr) => {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            eprintln!(
                "rvs-agent: listening on http://{addr}, rvsd at {}",
                args.socket
            );
            axum::serve(l, router).await
        }
        Listen::Unix(path) => {
            // A socket file left by an earlier agent; anything else stays.
            if std::fs::symlink_metadata(&path)
                .map(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
                .unwrap_or(false)
            {
                let _ = std::fs::remove_file(&path);
            }
            let l = tokio::net::UnixListener::bind(&path)
                .map_err(|e| format!("cannot listen on unix:{path}: {e}"))?;
            // Root's only, as rvsd's own socket.
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .map_err(|e| format!("cannot set the mode of {path}: {e}"))?;
            eprintln!(
                "rvs-agent: listening on unix:{path}, rvsd at {}",
                args.socket
            );
            axum::serve(l, router).await
        }
    }
    .map_err(|e| format!("serving failed: {e}"))
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse(&argv) {
        Ok(Some(a)) => a,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rvs-agent: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rvs-agent: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rvs-agent: {e}");
            ExitCode::FAILURE
        }
    }
}
