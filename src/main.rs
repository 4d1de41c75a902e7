//! The `doorward` command: serve, check a config, probe health, or list
//! and end sessions by hand.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use doorward::assertion::client_certificate::ClientCertificate;
use doorward::assertion::client_key::{ClientKey, ClientKeyAlg};
use doorward::config::{self, Config, RuntimeShape};
use doorward::reload::Reloader;
use doorward::server::{shutdown_signal, Server};

#[derive(Parser)]
#[command(name = "doorward", version, about = "An identity-aware reverse proxy")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Config file, for `serve` when no command is given.
    #[arg(long, short, global = true, default_value = "/etc/doorward/doorward.toml")]
    config: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy (the default).
    Serve,
    /// Validate the config file: exit 0 if it is usable, 1 with every problem.
    Check,
    /// Probe /_doorward/healthz on the configured listener (for container
    /// health checks): exit 0 if healthy.
    Healthcheck,
    /// Print a new random secret for `[session] keys` (48 bytes, base64url),
    /// or with --signing an Ed25519 signing key (PKCS#8 PEM) for
    /// `[headers] signing_keys`, or with --client a key for `[[provider]]
    /// client_key` (private_key_jwt) and its public JWK to register at the
    /// identity provider.
    Keygen {
        #[arg(long)]
        signing: bool,
        #[arg(long, conflicts_with = "signing")]
        client: bool,
        /// The client key's algorithm: ES256 (default), RS256 or EdDSA.
        #[arg(long, requires = "client", value_parser = clap::builder::ValueParser::new(parse_client_alg))]
        alg: Option<ClientKeyAlg>,
        /// Write the client key here (mode 0600, never over an existing
        /// file) and print only the JWK; without it both are printed.
        #[arg(long, requires = "client")]
        out: Option<PathBuf>,
        /// Also write a self-signed certificate for the client key here
        /// (CN=doorward, a year), for `client_certificate` and for IdPs
        /// that register a certificate (Entra ID).
        #[arg(long, requires = "client")]
        certificate: Option<PathBuf>,
    },
    /// Dry-run the identity mapping: the identity, the reason for every
    /// value, and whether login is allowed (exit 3 if not), for the claims
    /// in CLAIMS.json.
    Explain {
        /// Use this route's identity settings (default: the global ones).
        #[arg(long)]
        route: Option<String>,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// What the SCIM directory says of the user: a JSON object with
        /// `groups`, `roles` (and `orgs`), used as `[identity] source` says.
        #[arg(long)]
        directory: Option<PathBuf>,
        /// A JSON object of claims (as an ID token or userinfo would carry).
        claims: PathBuf,
    },
    /// List or end sessions by hand, in the configured store (every running
    /// replica follows within a second).
    Sessions {
        #[command(subcommand)]
        action: SessionsAction,
    },
}

#[derive(Subcommand)]
enum SessionsAction {
    /// One line per session: key prefix, provider, subject, email,
    /// preferred_username, directory key, created, last seen, expires.
    List {
        #[command(flatten)]
        select: Select,
        /// A JSON array instead of text.
        #[arg(long)]
        json: bool,
    },
    /// End the sessions named (--user [--provider], --session, or
    /// --provider) and print how many.
    Revoke {
        #[command(flatten)]
        select: Select,
    },
}

/// Which sessions: every option given must match.
#[derive(clap::Args)]
struct Select {
    /// The subject, the directory userName, or the email /
    /// preferred_username the login claimed.
    #[arg(long)]
    user: Option<String>,
    /// The `[[provider]]` name (the same email from two IdPs is two people).
    #[arg(long)]
    provider: Option<String>,
    /// A session key (or its first 8+ hex digits) as `list` shows it.
    #[arg(long, conflicts_with = "user")]
    session: Option<String>,
}

impl Select {
    fn selector(self) -> doorward::store::SessionSelector {
        doorward::store::SessionSelector {
            user: self.user,
            provider: self.provider,
            session: self.session,
            ..doorward::store::SessionSelector::default()
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&cli.config),
        Command::Check => check(&cli.config),
        Command::Healthcheck => healthcheck(&cli.config),
        Command::Keygen {
            client: true,
            alg,
            out,
            certificate,
            ..
        } => keygen_client(
            alg.unwrap_or(ClientKeyAlg::Es256),
            out.as_deref(),
            certificate.as_deref(),
        ),
        Command::Keygen { signing: false, .. } => {
            use base64::Engine;
            let bytes: [u8; 48] = rand::random();
            println!("{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes));
            ExitCode::SUCCESS
        }
        Command::Keygen { signing: true, .. } => match doorward::assertion::keys::SigningKey::generate().to_pem() {
            Some(pem) => {
                print!("{pem}");
                ExitCode::SUCCESS
            }
            None => {
                eprintln!("cannot encode the key");
                ExitCode::FAILURE
            }
        },
        Command::Explain {
            route,
            json,
            directory,
            claims,
        } => explain(&cli.config, route.as_deref(), json, directory.as_deref(), &claims),
        Command::Sessions { action } => sessions(&cli.config, action),
    }
}

fn parse_client_alg(s: &str) -> Result<ClientKeyAlg, String> {
    s.parse()
}

/// `doorward keygen --client`: a private key for private_key_jwt, and the
/// public JWK (its `kid` the key's thumbprint, which doorward sends when
/// `client_key_id` is unset) to register at the identity provider; with
/// `--certificate`, a self-signed certificate for the key as well.
fn keygen_client(alg: ClientKeyAlg, out: Option<&Path>, certificate: Option<&Path>) -> ExitCode {
    let made = ClientKey::generate(alg).and_then(|key| Ok((key.to_pem()?, key)));
    let (pem, key) = match made {
        Ok(made) => made,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = certificate {
        let cert = match ClientCertificate::self_signed(&key, "doorward", 365) {
            Ok(cert) => cert,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        };
        if let Err(e) = write_new(path, &cert, 0o644) {
            eprintln!("cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        eprintln!(
            "wrote a self-signed certificate for the key to {} (set client_certificate to it; \
             upload it to Entra ID)",
            path.display()
        );
    }
    match out {
        Some(path) => {
            if let Err(e) = write_new(path, &pem, 0o600) {
                eprintln!("cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            eprintln!(
                "wrote the private key to {}; register this public key at the identity provider:",
                path.display()
            );
        }
        None => print!("{pem}"),
    }
    println!("{}", key.public_jwk(key.thumbprint()));
    ExitCode::SUCCESS
}

/// Writes `contents` to a new file with `mode`, never over an existing one.
fn write_new(path: &Path, contents: &str, mode: u32) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .and_then(|mut file| file.write_all(contents.as_bytes()))
}

/// `doorward sessions …`: the work is in `doorward::admin::cli`.
fn sessions(path: &Path, action: SessionsAction) -> ExitCode {
    use doorward::admin::cli::SessionsCommand;
    let config = match load(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let command = match action {
        SessionsAction::List { select, json } => SessionsCommand::List {
            selector: select.selector(),
            json,
        },
        SessionsAction::Revoke { select } => {
            // The revocation's log line goes where the server's do.
            // No traces from the CLI.
            if let Err(e) = start_logging(&config, None) {
                eprintln!("{e}");
            }
            SessionsCommand::Revoke {
                selector: select.selector(),
            }
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(doorward::admin::cli::run(&config.store, command)) {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Loads the config with every check `serve` makes ("check = serve").
fn load(path: &Path) -> Result<Config, ExitCode> {
    doorward::build::load(path).map_err(|e| {
        eprintln!("{e}");
        ExitCode::FAILURE
    })
}

fn check(path: &Path) -> ExitCode {
    match load(path) {
        Ok(config) => {
            println!(
                "{}: ok ({} route{})",
                path.display(),
                config.routes.len(),
                if config.routes.len() == 1 { "" } else { "s" }
            );
            for (key, why) in config::weakened(&config) {
                println!("weakened: {key}: {why}");
            }
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// The config's `[log] format`, as the logging setup names it.
fn log_format(format: &config::LogFormat) -> doorward::telemetry::LineFormat {
    match format {
        config::LogFormat::Json => doorward::telemetry::LineFormat::Json,
        config::LogFormat::Pretty => doorward::telemetry::LineFormat::Pretty,
    }
}

/// What logging starts: the audit sink (reopened on SIGHUP) and the
/// traces exporter (flushed at exit).
type Started = (
    Option<Arc<doorward::audit::Sink>>,
    Option<doorward::telemetry::export::Traces>,
);

/// Starts the log, the audit trail and the traces `[log]`, `[audit]` and
/// `[traces]` ask for (traces only given a `runtime` to send them on).
fn start_logging(config: &Config, runtime: Option<&tokio::runtime::Runtime>) -> Result<Started, String> {
    let audit = doorward::audit::settings::layer(&config.audit)?;
    let sink = audit.as_ref().map(doorward::audit::AuditLayer::sink);
    let traces = match runtime {
        Some(runtime) => trace_settings(&config.traces)?.map(|settings| (settings, runtime.handle().clone())),
        None => None,
    };
    let traces = doorward::telemetry::init(&config.log.level, log_format(&config.log.format), audit, traces)?;
    Ok((sink, traces))
}

/// `[traces]` as the exporter takes it (None when off); header secrets
/// resolved here (checked by `doorward check` already).
fn trace_settings(
    traces: &config::traces::TracesConfig,
) -> Result<Option<doorward::telemetry::export::TraceSettings>, String> {
    let (true, Some(endpoint)) = (traces.enabled, &traces.endpoint) else {
        return Ok(None);
    };
    let mut headers = Vec::new();
    for (name, source) in &traces.headers {
        let name = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("traces.headers.{name}: not a header name"))?;
        let value = source.resolve().map_err(|e| format!("traces.headers.{name}: {e}"))?;
        headers.push((name, value));
    }
    Ok(Some(doorward::telemetry::export::TraceSettings {
        endpoint: endpoint.clone(),
        sample_ratio: traces.sample_ratio,
        service_name: traces.service_name.clone(),
        trust_traceparent_from: traces.trust_traceparent_from.clone(),
        headers,
        tls: doorward::tls::client_config(None).map_err(|e| format!("traces: {e}"))?,
    }))
}

fn serve(path: &Path) -> ExitCode {
    let config = match load(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    match config.server.runtime {
        // Connections are served on their own threads (see
        // `doorward::serving`); this runtime accepts and runs the rest.
        RuntimeShape::PerCore => {
            runtime.worker_threads(1);
        }
        RuntimeShape::Shared if config.server.worker_threads > 0 => {
            runtime.worker_threads(config.server.worker_threads);
        }
        RuntimeShape::Shared => {}
    }
    // Named for top, ps and perf (the serving threads are doorward-srv-N).
    let runtime = match runtime.thread_name("doorward-rt").enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (audit_sink, traces) = match start_logging(&config, Some(&runtime)) {
        Ok(started) => started,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async move {
        let server = match Server::bind(&config).await {
            Ok(server) => server,
            Err(e) => {
                tracing::error!(error = %e, "cannot start");
                return ExitCode::FAILURE;
            }
        };
        let (routes, tls, watch) = (
            config.routes.len(),
            config.server.tls.is_some(),
            config.server.reload_watch,
        );
        // Before "listening": a SIGHUP from then on reloads, never kills.
        let reloader = Arc::new(Reloader::new(path.to_path_buf(), config, server.shared_gateway()));
        if let Err(e) = reloader.spawn_sighup() {
            tracing::error!(error = %e, "cannot listen for SIGHUP: config reload by signal is off");
        }
        if watch {
            reloader.spawn_watch();
        }
        if let Some(sink) = audit_sink {
            if let Err(e) = doorward::audit::sink::reopen_on_sighup(sink) {
                tracing::error!(error = %e, "cannot listen for SIGHUP: the audit file is not reopened on rotation");
            }
        }
        match server.local_addr() {
            Ok(addr) => tracing::info!(%addr, routes, tls, "doorward listening"),
            Err(e) => tracing::warn!(error = %e, "listening on an unknown address"),
        }
        server.run(shutdown_signal()).await;
        ExitCode::SUCCESS
    });
    // The last spans (the drain's requests among them) go out while the
    // runtime that sends them still runs.
    if let Some(traces) = traces {
        traces.shutdown();
    }
    // Upgraded tunnels still open after the grace period end here.
    runtime.shutdown_timeout(Duration::from_millis(100));
    code
}

/// Exit code of `explain` when the login would be refused.
const EXIT_DENIED: u8 = 3;

fn explain(path: &Path, route: Option<&str>, json: bool, directory: Option<&Path>, claims_path: &Path) -> ExitCode {
    let config = match load(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let claims: doorward::identity::Claims = match std::fs::read_to_string(claims_path)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str(&text).map_err(|e| format!("not a JSON object of claims: {e}")))
    {
        Ok(claims) => claims,
        Err(e) => {
            eprintln!("{}: {e}", claims_path.display());
            return ExitCode::FAILURE;
        }
    };
    let engine = match doorward::identity::IdentityEngine::from_config(&config) {
        Ok(engine) => engine,
        Err(problems) => {
            for (key, message) in problems {
                eprintln!("{key}: {message}");
            }
            return ExitCode::FAILURE;
        }
    };
    let route_index = route.and_then(|name| config.routes.iter().position(|r| r.name == name));
    let policy = match route {
        None => 0,
        Some(name) => match route_index {
            Some(index) => engine.policy_of_route(index),
            None => {
                eprintln!("no route is named `{name}`");
                return ExitCode::FAILURE;
            }
        },
    };
    let directory = match directory.map(read_directory).transpose() {
        Ok(directory) => directory,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let mut outcome = engine.policies[policy].compute_with(&claims, directory.as_ref(), true);
    // How the login was made, and whether the route's assurance holds now.
    outcome.identity.authentication = doorward::login::Authentication::from_claims(&claims);
    let ask = route_index.map(|i| doorward::login::AssuranceAsk {
        acr: config.routes[i].acr.clone(),
        max_age: config.routes[i].max_age.map(|d| d.0.as_secs()),
        amr: config.routes[i].amr.clone(),
    });
    let now = doorward::clock::Clock::system().now();
    let assurance = doorward::identity::explain::Assurance::judge(&outcome.identity.authentication, ask.as_ref(), now);
    if json {
        let mut value = serde_json::to_value(&outcome).unwrap_or_default();
        if let (Some(object), Some(step_up)) = (value.as_object_mut(), assurance.step_up_json()) {
            object.insert("step_up".into(), step_up);
        }
        println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
    } else {
        print!("{}", doorward::identity::explain::render(&outcome));
        print!("{}", assurance.render());
    }
    if outcome.login.allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_DENIED)
    }
}

/// `{"groups": [...], "roles": [...], "orgs": [...]}` for `explain --directory`.
fn read_directory(path: &Path) -> Result<doorward::identity::engine::Directory, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
    let list = |name: &str| -> Vec<String> {
        value
            .get(name)
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    };
    Ok(doorward::identity::engine::Directory {
        groups: list("groups"),
        roles: list("roles"),
        orgs: list("orgs"),
    })
}

fn healthcheck(path: &Path) -> ExitCode {
    let config = match load(path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let mut addr = config.server.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let result = doorward::probe::healthz(addr, &config.server.internal_prefix, config.server.tls.is_some());
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("unhealthy: {e}");
            ExitCode::FAILURE
        }
    }
}
