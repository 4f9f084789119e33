//! Command-line flags; every flag can also be set from a `VESTIBULE_*` environment variable.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use tracing::level_filters::LevelFilter;

/// Vestibule, a Kubernetes Ingress controller with its own HTTP data plane.
#[derive(Debug, Parser)]
#[command(name = "vestibule", version, about, args_override_self = true)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
    /// Log level: off, error, warn, info, debug or trace.
    #[arg(
        long,
        global = true,
        env = "VESTIBULE_LOG_LEVEL",
        default_value = "info"
    )]
    pub log_level: LevelFilter,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Route traffic according to Ingress resources.
    Serve(ServeArgs),
    /// Run a demo backend that answers with a JSON description of each request.
    Echo(EchoArgs),
}

/// Flags of `vestibule serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Directory of Kubernetes manifests (YAML or JSON) to serve, watched for changes.
    #[arg(long, env = "VESTIBULE_MANIFESTS")]
    pub manifests: PathBuf,
    /// Address of the plain HTTP listener.
    #[arg(long, env = "VESTIBULE_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,
    /// Address of the admin listener (/healthz, /readyz); keep it off the traffic ports.
    #[arg(long, env = "VESTIBULE_ADMIN_ADDR", default_value = "127.0.0.1:10254")]
    pub admin_addr: SocketAddr,
    /// The IngressClass name this controller serves.
    #[arg(long, env = "VESTIBULE_INGRESS_CLASS", default_value = "vestibule")]
    pub ingress_class: String,
    /// Also serve Ingresses that name no class.
    #[arg(long, env = "VESTIBULE_WATCH_INGRESS_WITHOUT_CLASS")]
    pub watch_ingress_without_class: bool,
    /// Worker threads for the data plane [default: the number of cores].
    #[arg(long, env = "VESTIBULE_WORKERS")]
    pub workers: Option<NonZeroUsize>,
}

/// Flags of `vestibule echo`.
#[derive(Debug, Args)]
pub struct EchoArgs {
    /// Address to listen on.
    #[arg(long, env = "VESTIBULE_ECHO_LISTEN", default_value = "127.0.0.1:9000")]
    pub listen: SocketAddr,
    /// Name reported in every answer, to tell backends apart.
    #[arg(long, env = "VESTIBULE_ECHO_NAME", default_value = "echo")]
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn flags_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_defaults_match_the_documentation() {
        let cli = Cli::try_parse_from(["vestibule", "serve", "--manifests", "m"]).expect("parses");
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        assert_eq!(args.http_addr.to_string(), "0.0.0.0:8080");
        assert_eq!(args.admin_addr.to_string(), "127.0.0.1:10254");
        assert_eq!(args.ingress_class, "vestibule");
        assert!(!args.watch_ingress_without_class);
        assert_eq!(args.workers, None);
    }
}
