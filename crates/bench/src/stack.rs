//! The system under test: the four service processes (and the receiver) started from a build
//! folder, on the shared broker and PostgreSQL, with a topic prefix and database of their own.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine;
use tokio::process::{Child, Command};

use crate::settings::{RunWiring, service_env};

/// The services, in the order they are started.
pub const SERVICES: [&str; 4] = ["synap-ingest", "synap-router", "synap-sender", "synap-control"];

#[derive(Clone)]
pub struct Options {
    pub bin_dir: PathBuf,
    pub bootstrap: String,
    pub admin_database_url: String,
    pub service_env: Vec<(String, String)>,
    pub logs: PathBuf,
}

pub struct Stack {
    pub topic_prefix: String,
    pub control_addr: String,
    pub admin_token: String,
    pub processes: Vec<(String, Child)>,
    pub env: Vec<(String, String)>,
    /// Each service's telemetry address (`/metrics`, `/readyz`).
    telemetry: Vec<(String, String)>,
    admin_database_url: String,
    database: String,
    bin_dir: PathBuf,
}

impl Stack {
    pub async fn start(options: &Options) -> anyhow::Result<Stack> {
        for binary in SERVICES.iter().chain(&["synap-admin"]) {
            let path = options.bin_dir.join(binary);
            if !path.exists() {
                bail!("{} is missing: build first (scripts/bench.sh builds in release)", path.display());
            }
        }
        let id = format!("bench{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let database = format!("synap_{id}");
        execute(&options.admin_database_url, &format!("CREATE DATABASE \"{database}\""))
            .await
            .context("creating the benchmark database")?;
        let mut database_url = url::Url::parse(&options.admin_database_url)?;
        database_url.set_path(&database);
        let admin_token = format!("bench-{}", uuid::Uuid::new_v4().simple());
        let key: Vec<u8> =
            uuid::Uuid::new_v4().as_bytes().iter().chain(uuid::Uuid::new_v4().as_bytes()).copied().collect();
        // Control's gRPC port and each service's telemetry port (`/metrics`, `/readyz`): four
        // services on one machine cannot all have the default 9090.
        let ports = free_ports(1 + SERVICES.len())?;
        let wiring = RunWiring {
            bootstrap: options.bootstrap.clone(),
            topic_prefix: format!("{id}."),
            database_url: database_url.to_string(),
            encryption_key: base64::engine::general_purpose::STANDARD.encode(key),
            admin_token: admin_token.clone(),
            control_addr: format!("127.0.0.1:{}", ports[0]),
        };
        let env = service_env(&wiring, &options.service_env);
        let mut stack = Stack {
            topic_prefix: wiring.topic_prefix,
            control_addr: wiring.control_addr,
            admin_token,
            processes: Vec::new(),
            env,
            telemetry: Vec::new(),
            admin_database_url: options.admin_database_url.clone(),
            database,
            bin_dir: options.bin_dir.clone(),
        };
        stack.admin(&["migrate"]).await?;
        stack.admin(&["topics"]).await?;
        std::fs::create_dir_all(&options.logs)?;
        for (binary, port) in SERVICES.iter().zip(&ports[1..]) {
            let addr = format!("127.0.0.1:{port}");
            let child = stack.spawn(binary, &addr, &options.logs)?;
            stack.processes.push((binary.to_string(), child));
            stack.telemetry.push((binary.to_string(), addr));
        }
        stack.wait_for_control().await?;
        Ok(stack)
    }

    /// Starts a service from the build folder with the services' environment.
    fn spawn(&self, binary: &str, telemetry_addr: &str, logs: &Path) -> anyhow::Result<Child> {
        let log = std::fs::File::create(logs.join(format!("{binary}.log")))?;
        self.command(binary)
            .env("SYNAP_TELEMETRY__LISTEN_ADDR", telemetry_addr)
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {binary}"))
    }

    fn command(&self, binary: &str) -> Command {
        let mut command = Command::new(self.bin_dir.join(binary));
        // The services see only this run's settings: a SYNAP_* or RUST_LOG variable left in the
        // caller's shell would silently change what is measured.
        for (key, _) in std::env::vars_os() {
            if key.to_str().is_some_and(|k| k.starts_with("SYNAP_") || k == "RUST_LOG") {
                command.env_remove(key);
            }
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    async fn admin(&self, args: &[&str]) -> anyhow::Result<()> {
        let output = self.command("synap-admin").args(args).output().await?;
        if !output.status.success() {
            bail!("synap-admin {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
        }
        Ok(())
    }

    async fn wait_for_control(&mut self) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(&self.control_addr).await.is_err() {
            self.check_alive()?;
            if tokio::time::Instant::now() > deadline {
                bail!("synap-control did not listen on {} within 30 s", self.control_addr);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Fails when a service has exited: a figure measured without it would be a lie.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        for (name, child) in &mut self.processes {
            if let Some(status) = child.try_wait()? {
                bail!("{name} exited with {status}; see its log");
            }
        }
        Ok(())
    }

    /// Where `binary` serves `/metrics`.
    pub fn telemetry_addr(&self, binary: &str) -> Option<&str> {
        self.telemetry.iter().find(|(name, _)| name == binary).map(|(_, addr)| addr.as_str())
    }

    pub fn pids(&self) -> Vec<(String, u32)> {
        self.processes.iter().filter_map(|(name, child)| Some((name.clone(), child.id()?))).collect()
    }

    /// SIGTERM to every service, a grace period to drain, then the database goes (or, when
    /// PostgreSQL keeps refusing for 10 s, stays, named on stderr).
    pub async fn stop(mut self) {
        for (_, child) in &self.processes {
            if let Some(pid) = child.id() {
                let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status().await;
            }
        }
        for (name, child) in &mut self.processes {
            if tokio::time::timeout(Duration::from_secs(10), child.wait()).await.is_err() {
                eprintln!("{name} did not stop within 10 s of SIGTERM; killing it");
                let _ = child.kill().await;
            }
        }
        self.processes.clear();
        // FORCE ends the database's other connections, but PostgreSQL refuses to end one that
        // belongs to another role: an autovacuum worker that happens to be vacuuming it (seen
        // after a test suite had run). Such a worker finishes within seconds, and a database left
        // behind costs a measurement nothing, so the run goes on and says so.
        let drop = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.database);
        let mut attempt = 1;
        loop {
            match execute(&self.admin_database_url, &drop).await {
                Ok(()) => return,
                Err(e) if attempt < 10 => {
                    eprintln!("dropping {} (attempt {attempt}): {e:#}; trying again", self.database);
                    attempt += 1;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => {
                    eprintln!(
                        "could not drop the benchmark database {}; drop it by hand: {e:#}",
                        self.database
                    );
                    return;
                }
            }
        }
    }
}

/// A private broker: a tansu process with in-memory storage, empty at start, so that figures
/// never depend on what other runs left in a shared broker.
pub struct Broker {
    child: Child,
    pub bootstrap: String,
}

impl Broker {
    pub async fn start(tansu: &Path, logs: &Path) -> anyhow::Result<Broker> {
        std::fs::create_dir_all(logs)?;
        let address = format!("127.0.0.1:{}", free_port()?);
        let url = format!("tcp://{address}");
        let log = std::fs::File::create(logs.join("tansu.log"))?;
        let child = Command::new(tansu)
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://bench/"])
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", tansu.display()))?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(&address).await.is_err() {
            if tokio::time::Instant::now() > deadline {
                bail!("the private broker did not listen on {address} within 10 s; see {}", logs.display());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Broker { child, bootstrap: address })
    }

    /// The broker's process id, for its CPU figures; `None` once it has exited.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

async fn execute(admin_url: &str, sql: &str) -> anyhow::Result<()> {
    let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("cannot reach PostgreSQL at {admin_url}"))?;
    tokio::spawn(connection);
    client.batch_execute(sql).await?;
    Ok(())
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(free_ports(1)?[0])
}

/// `n` distinct free ports: the listeners are held until all are chosen, so the kernel cannot
/// hand out one port twice.
pub fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let listeners =
        (0..n).map(|_| std::net::TcpListener::bind("127.0.0.1:0")).collect::<std::io::Result<Vec<_>>>()?;
    Ok(listeners.iter().map(|l| l.local_addr().map(|a| a.port())).collect::<std::io::Result<_>>()?)
}
