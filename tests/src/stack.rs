//! A private Synap stack for one test: its own topic prefix, database and service processes,
//! on the shared broker and PostgreSQL.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use synap_proto::control::v1::control_service_client::ControlServiceClient;
use synap_proto::control::v1::delivery_service_client::DeliveryServiceClient;
use tokio::process::{Child, Command};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
pub const ENCRYPTION_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// The configuration file of every test stack: a consumer killed with SIGKILL leaves its group
/// after seconds rather than librdkafka's default 45 s, so restart tests stay short.
const TEST_CONFIG: &str = r#"
[kafka.consumer]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "500"
"#;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    Ingest,
    Router,
    Sender,
    Control,
}

impl Service {
    pub const ALL: [Service; 4] = [Service::Ingest, Service::Router, Service::Sender, Service::Control];

    fn binary(self) -> &'static str {
        match self {
            Service::Ingest => "synap-ingest",
            Service::Router => "synap-router",
            Service::Sender => "synap-sender",
            Service::Control => "synap-control",
        }
    }

    /// The log file of one replica: replica 0 keeps the plain name, so single-replica tests and
    /// their readers see no change.
    fn log_name(self, replica: usize) -> String {
        match replica {
            0 => format!("{}.log", self.binary()),
            n => format!("{}-{n}.log", self.binary()),
        }
    }

    /// The consumer group suffix the service uses.
    pub fn group(self) -> &'static str {
        match self {
            Service::Ingest => "ingest",
            Service::Router => "router",
            Service::Sender => "sender",
            Service::Control => "control",
        }
    }
}

pub type Control = ControlServiceClient<InterceptedService<Channel, AdminAuth>>;
pub type Deliveries = DeliveryServiceClient<InterceptedService<Channel, AdminAuth>>;

#[derive(Clone)]
pub struct AdminAuth;

impl tonic::service::Interceptor for AdminAuth {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        request.metadata_mut().insert("authorization", format!("Bearer {ADMIN_TOKEN}").parse().unwrap());
        Ok(request)
    }
}

pub struct Stack {
    /// Unique per stack: topic prefix (`<id>.`), database name (`synap_<id>`), log folder.
    pub id: String,
    pub bootstrap: String,
    pub control_addr: String,
    /// The web portal's base URL (`portal.public_url`, also where it listens).
    pub portal_url: String,
    pub logs: PathBuf,
    /// Each replica's `/metrics`, `/healthz`, `/readyz` address (`telemetry.listen_addr`).
    telemetry_addrs: HashMap<Replica, String>,
    admin_url: String,
    database: String,
    env: Vec<(String, String)>,
    /// Variables for one service only, over `env`.
    service_env: Vec<(Service, String, String)>,
    children: HashMap<Replica, Child>,
}

/// One process of a service. Every stack runs replica 0 of each service; a test may start more
/// ([`Stack::scale`]), each with its own telemetry port and log file, sharing the service's
/// consumer groups, topics and database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Replica {
    pub service: Service,
    pub index: usize,
}

impl From<Service> for Replica {
    /// A service named alone is its first replica: what every single-replica test means.
    fn from(service: Service) -> Self {
        Replica { service, index: 0 }
    }
}

impl Service {
    /// Replica `index` of this service.
    pub fn replica(self, index: usize) -> Replica {
        Replica { service: self, index }
    }
}

/// Where cargo put the binaries: next to this test binary's `deps/` folder.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent().and_then(|deps| deps.parent()).expect("target dir").to_path_buf()
}

/// The client for the services' telemetry servers. With a deadline: a port another process
/// took, and which never answers, fails the wait that asked instead of hanging the test. It keeps
/// no connections: tests in one process (`cargo test`) each run on a runtime of their own.
fn telemetry_client() -> &'static reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder().timeout(Duration::from_secs(10)).pool_max_idle_per_host(0).build().unwrap()
    })
}

/// `n` distinct free ports for services to listen on, held until all are chosen so that none is
/// chosen twice (e.g. control's gRPC port as another service's metrics port).
///
/// Chosen below the kernel's ephemeral range, which every port 0 listener (the tests' HTTP
/// receivers, some of which never answer) and every outgoing connection (each Kafka client holds
/// several) takes from: a port released here and taken there before its service binds it left
/// the service to exit, and worse, the test talking to whatever had taken it. Other tests choosing
/// the same port remains possible (rare: each process starts at a random place), and is met by
/// starting the service again on other ports ([`Stack::wait_listening`]).
pub fn free_ports(n: usize) -> Vec<u16> {
    /// The range to choose from, and where this process takes the next port in it.
    static PORTS: std::sync::OnceLock<(Option<(u16, u16)>, std::sync::atomic::AtomicU32)> =
        std::sync::OnceLock::new();
    let (range, next) = PORTS.get_or_init(|| {
        (listening_range(), std::sync::atomic::AtomicU32::new(uuid::Uuid::new_v4().as_u128() as u32))
    });
    let mut listeners = Vec::with_capacity(n);
    if let Some((low, high)) = *range {
        let span = u32::from(high - low);
        for _ in 0..span {
            let port = low + (next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % span) as u16;
            if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port)) {
                listeners.push(listener);
                if listeners.len() == n {
                    break;
                }
            }
        }
    }
    // A kernel whose ephemeral range leaves no room below it: what it hands out.
    while listeners.len() < n {
        listeners.push(std::net::TcpListener::bind("127.0.0.1:0").unwrap());
    }
    listeners.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

/// Ports from 10000 up to the start of the kernel's ephemeral range (32768 by default), if
/// that leaves a thousand or more.
fn listening_range() -> Option<(u16, u16)> {
    const LOW: u16 = 10_000;
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    (ephemeral_start >= LOW + 1000).then_some((LOW, ephemeral_start))
}

impl Stack {
    /// Starts a stack with the default test settings.
    pub async fn start() -> Stack {
        Self::start_with(&[]).await
    }

    /// Starts a stack; `overrides` are extra `SYNAP_*` variables for every service.
    pub async fn start_with(overrides: &[(&str, &str)]) -> Stack {
        let admin_url = std::env::var("SYNAP_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://synap:synap@127.0.0.1:5432/synap".into());
        Self::start_on(&admin_url, overrides).await
    }

    /// Starts a stack with `overrides` for every service and `per_service` variables for one
    /// service each, e.g. a sender configured unlike the control service.
    pub async fn start_with_per_service(
        overrides: &[(&str, &str)],
        per_service: &[(Service, &str, &str)],
    ) -> Stack {
        let admin_url = std::env::var("SYNAP_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://synap:synap@127.0.0.1:5432/synap".into());
        Self::start_full(&admin_url, overrides, per_service).await
    }

    /// Starts a stack whose database lives on the PostgreSQL server of `admin_url` (a role that
    /// may create databases), e.g. a [`crate::postgres::Throwaway`] cluster.
    pub async fn start_on(admin_url: &str, overrides: &[(&str, &str)]) -> Stack {
        Self::start_full(admin_url, overrides, &[]).await
    }

    async fn start_full(
        admin_url: &str,
        overrides: &[(&str, &str)],
        per_service: &[(Service, &str, &str)],
    ) -> Stack {
        let admin_url = admin_url.to_owned();
        let id = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let bootstrap = std::env::var("SYNAP_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".into());
        let database = format!("synap_{id}");
        create_database(&admin_url, &database).await;
        let mut db_url = url::Url::parse(&admin_url).unwrap();
        db_url.set_path(&database);

        let ports = free_ports(2 + Service::ALL.len());
        let control_addr = format!("127.0.0.1:{}", ports[0]);
        let portal_addr = format!("127.0.0.1:{}", ports[1]);
        let portal_url = format!("http://{portal_addr}");
        let logs = bin_dir().join("test-logs").join(&id);
        std::fs::create_dir_all(&logs).unwrap();
        // Beside the log folder, not in it: tests read every file there as a log.
        let config_file = bin_dir().join("test-logs").join(format!("{id}.toml")).display().to_string();
        std::fs::write(&config_file, TEST_CONFIG).unwrap();
        let mut env: Vec<(String, String)> = [
            ("SYNAP_KAFKA__BOOTSTRAP_SERVERS", bootstrap.as_str()),
            ("SYNAP_KAFKA__TOPIC_PREFIX", &format!("{id}.")),
            ("SYNAP_DATABASE__URL", db_url.as_str()),
            ("SYNAP_DATABASE__POOL_SIZE", "4"),
            ("SYNAP_ENCRYPTION__KEY", ENCRYPTION_KEY),
            ("SYNAP_CONTROL__ADMIN_TOKEN", ADMIN_TOKEN),
            ("SYNAP_CONTROL__LISTEN_ADDR", &control_addr),
            ("SYNAP_CONTROL__ALLOW_HTTP_URLS", "true"),
            // Test clients call control on loopback without TLS (tests/e2e/control_tls.rs: with).
            ("SYNAP_CONTROL__ALLOW_PLAINTEXT", "true"),
            // The web portal on loopback (a browser keeps Secure cookies from http://127.0.0.1).
            ("SYNAP_PORTAL__PUBLIC_URL", &portal_url),
            ("SYNAP_PORTAL__LISTEN_ADDR", &portal_addr),
            ("SYNAP_TOPICS__INBOUND_PARTITIONS", "2"),
            ("SYNAP_TOPICS__EVENT_PARTITIONS", "1"),
            ("SYNAP_TOPICS__DELIVERY_PARTITIONS", "2"),
            ("SYNAP_SENDER__RETRY_DELAYS_MS", "[0, 200]"),
            ("SYNAP_SENDER__REQUEST_TIMEOUT_MS", "3000"),
            // Test receivers listen on loopback, which the outbound policy refuses by default.
            ("SYNAP_OUTBOUND__ALLOW_CIDRS", "[\"127.0.0.0/8\"]"),
            // Consumer settings with dotted librdkafka names cannot be environment variables.
            ("SYNAP_CONFIG", &config_file),
            ("SYNAP_LOG__FILTER", "info,synap_ingest=debug,synap_router=debug,synap_sender=debug"),
            ("RUST_BACKTRACE", "1"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        env.extend(overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        // A test may point the stack at its own broker (e.g. one behind TLS).
        let bootstrap = overrides
            .iter()
            .rfind(|(k, _)| *k == "SYNAP_KAFKA__BOOTSTRAP_SERVERS")
            .map_or(bootstrap, |(_, v)| v.to_string());

        let telemetry_addrs = Service::ALL
            .iter()
            .zip(&ports[2..])
            .map(|(s, port)| (Replica::from(*s), format!("127.0.0.1:{port}")))
            .collect();
        let service_env = per_service.iter().map(|(s, k, v)| (*s, k.to_string(), v.to_string())).collect();
        let mut stack = Stack {
            id,
            bootstrap,
            control_addr,
            portal_url,
            logs,
            telemetry_addrs,
            admin_url,
            database,
            env,
            service_env,
            children: HashMap::new(),
        };
        stack.admin(&["migrate"]).await;
        stack.admin(&["topics"]).await;
        for service in Service::ALL {
            stack.spawn(service);
        }
        stack.wait_listening().await;
        stack.wait_for_control().await;
        stack
    }

    /// Waits until every running replica serves its telemetry port. A port chosen by
    /// [`free_ports`] can be taken by a process of another test before the service binds it; a
    /// replica that exited for that reason is started again on new ports.
    async fn wait_listening(&mut self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut replicas: Vec<Replica> = self.children.keys().copied().collect();
        replicas.sort_by_key(|r| (r.service as usize, r.index));
        for replica in replicas {
            let mut restarts = 0;
            loop {
                let url = format!("http://{}/healthz", self.telemetry_addr(replica));
                if telemetry_client().get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
                    break;
                }
                if let Some(child) = self.children.get_mut(&replica)
                    && let Ok(Some(status)) = child.try_wait()
                {
                    self.restart_after_port_clash(replica, status, &mut restarts);
                    continue;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{replica:?} not serving /healthz within 30 s; see {}",
                    self.logs.display()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    fn command(&self, binary: &str) -> Command {
        let path = bin_dir().join(binary);
        assert!(
            path.exists(),
            "{} is missing: build the binaries first (`cargo build --workspace --bins`; scripts/test.sh does this)",
            path.display()
        );
        let mut command = Command::new(path);
        command.env_clear();
        for key in ["PATH", "HOME"] {
            if let Ok(v) = std::env::var(key) {
                command.env(key, v);
            }
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Runs `synap-admin <args>` with the stack's settings, whatever its exit status.
    pub async fn try_admin(&self, args: &[&str]) -> std::process::Output {
        self.admin_command(args).await
    }

    /// `synap-admin <args>` with the stack's settings, to run beside other work (e.g. spawned):
    /// resolves to its output, whatever its exit status.
    pub fn admin_command(
        &self,
        args: &[&str],
    ) -> impl Future<Output = std::process::Output> + Send + 'static {
        let mut command = self.command("synap-admin");
        command.args(args);
        async move { command.output().await.unwrap() }
    }

    /// Runs `synap-admin <args>` and asserts it succeeds.
    pub async fn admin(&self, args: &[&str]) -> String {
        self.admin_with(args, &[]).await
    }

    /// Runs `synap-admin <args>` with extra `SYNAP_*` variables (a changed configuration) and
    /// asserts it succeeds; returns its standard output.
    pub async fn admin_with(&self, args: &[&str], extra: &[(&str, &str)]) -> String {
        let output =
            self.command("synap-admin").envs(extra.iter().copied()).args(args).output().await.unwrap();
        assert!(
            output.status.success(),
            "synap-admin {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Starts (or restarts) one replica (a [`Service`] alone is replica 0), appending its log to
    /// `<logs>/<binary>.log` (`<binary>-<n>.log` for replica n). A replica started for the first
    /// time gets a fresh telemetry port; a restarted one keeps its port.
    pub fn spawn(&mut self, replica: impl Into<Replica>) {
        let replica = replica.into();
        let service = replica.service;
        self.telemetry_addrs.entry(replica).or_insert_with(|| format!("127.0.0.1:{}", free_ports(1)[0]));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.logs.join(service.log_name(replica.index)))
            .unwrap();
        let own = self.service_env.iter().filter(|(s, _, _)| *s == service).map(|(_, k, v)| (k, v));
        let child = self
            .command(service.binary())
            .env("SYNAP_TELEMETRY__LISTEN_ADDR", self.telemetry_addr(replica))
            .envs(own)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        self.children.insert(replica, child);
    }

    /// Runs `count` replicas of `service` (starting replicas 1.. beside the running replica 0)
    /// and waits until each serves its telemetry port. Returns the replicas, replica 0 first.
    pub async fn scale(&mut self, service: Service, count: usize) -> Vec<Replica> {
        let replicas: Vec<Replica> = (0..count).map(|i| service.replica(i)).collect();
        for replica in &replicas {
            if !self.children.contains_key(replica) {
                self.spawn(*replica);
            }
        }
        self.wait_listening().await;
        replicas
    }

    /// Sets (`Some`) or removes (`None`) a `SYNAP_*` variable for every service started from now
    /// on, and for `synap-admin`; running services keep theirs until [`Stack::restart`].
    pub fn set_env(&mut self, key: &str, value: Option<&str>) {
        self.env.retain(|(k, _)| k != key);
        if let Some(value) = value {
            self.env.push((key.to_owned(), value.to_owned()));
        }
    }

    /// Runs one more `service` process with the stack's settings and `extra` over them (on a
    /// telemetry port of its own), expecting it to exit by itself within `timeout`: its exit
    /// status and everything it printed. Panics if it is still running then.
    pub async fn run_to_exit(
        &self,
        service: Service,
        extra: &[(&str, &str)],
        timeout: Duration,
    ) -> (std::process::ExitStatus, String) {
        let port = free_ports(1)[0];
        let mut command = self.command(service.binary());
        command
            .envs(extra.iter().copied())
            .env("SYNAP_TELEMETRY__LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .kill_on_drop(true);
        if service == Service::Control {
            let ports = free_ports(2);
            command.env("SYNAP_CONTROL__LISTEN_ADDR", format!("127.0.0.1:{}", ports[0]));
            command.env("SYNAP_PORTAL__LISTEN_ADDR", format!("127.0.0.1:{}", ports[1]));
        }
        let output = tokio::time::timeout(timeout, command.output())
            .await
            .unwrap_or_else(|_| panic!("{service:?} still running after {timeout:?}"))
            .unwrap();
        let mut printed = String::from_utf8_lossy(&output.stdout).into_owned();
        printed.push_str(&String::from_utf8_lossy(&output.stderr));
        (output.status, printed)
    }

    /// The URL of the stack's own database, for checks the API does not offer.
    pub fn database_url(&self) -> String {
        let mut url = url::Url::parse(&self.admin_url).unwrap();
        url.set_path(&self.database);
        url.to_string()
    }

    /// A connection to the stack's database.
    pub async fn database(&self) -> tokio_postgres::Client {
        let (client, connection) =
            tokio_postgres::connect(&self.database_url(), tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    }

    /// SIGKILL: the replica dies at once, mid-work.
    pub async fn kill(&mut self, replica: impl Into<Replica>) {
        if let Some(mut child) = self.children.remove(&replica.into()) {
            child.kill().await.unwrap();
        }
    }

    /// Sends SIGTERM and returns at once: the replica starts draining.
    pub fn terminate(&self, replica: impl Into<Replica>) {
        let pid = self.children[&replica.into()].id().expect("running child");
        let status = std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status().unwrap();
        assert!(status.success());
    }

    /// SIGTERM, then waits for a clean exit (the replica drains and commits).
    pub async fn stop(&mut self, replica: impl Into<Replica>) {
        let replica = replica.into();
        let Some(mut child) = self.children.remove(&replica) else { return };
        let pid = child.id().expect("running child");
        let status = std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status().unwrap();
        assert!(status.success());
        let exit = tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .expect("service stops within 30 s of SIGTERM")
            .unwrap();
        assert!(exit.success(), "{replica:?} exited with {exit} after SIGTERM; see {}", self.logs.display());
    }

    /// A rolling restart of one replica, as an upgrade does it: SIGTERM, wait for the clean
    /// exit, start it again (same port and log file, the stack's current settings) and wait until
    /// it is ready (`/readyz`), its gRPC port too for control.
    pub async fn restart(&mut self, replica: impl Into<Replica>) {
        let replica = replica.into();
        self.stop(replica).await;
        self.spawn(replica);
        self.wait_listening().await;
        if replica.service == Service::Control {
            self.wait_for_control().await;
        }
        self.wait_for_readyz(replica, 200, Duration::from_secs(30)).await;
    }

    /// Starts `replica` again on new ports if it exited because one of its ports was taken;
    /// panics if it exited for another reason, or kept clashing.
    fn restart_after_port_clash(
        &mut self,
        replica: Replica,
        status: std::process::ExitStatus,
        restarts: &mut u32,
    ) {
        let log = std::fs::read_to_string(self.logs.join(replica.service.log_name(replica.index)));
        let port_taken = log.is_ok_and(|l| l.contains("Address already in use"));
        assert!(port_taken && *restarts < 3, "{replica:?} exited with {status}; see {}", self.logs.display());
        *restarts += 1;
        let ports = free_ports(3);
        self.telemetry_addrs.insert(replica, format!("127.0.0.1:{}", ports[0]));
        if replica.service == Service::Control {
            self.control_addr = format!("127.0.0.1:{}", ports[1]);
            self.portal_url = format!("http://127.0.0.1:{}", ports[2]);
            let portal_addr = self.portal_url.trim_start_matches("http://").to_owned();
            let keys =
                ["SYNAP_CONTROL__LISTEN_ADDR", "SYNAP_PORTAL__PUBLIC_URL", "SYNAP_PORTAL__LISTEN_ADDR"];
            self.env.retain(|(k, _)| !keys.contains(&k.as_str()));
            self.env.push(("SYNAP_CONTROL__LISTEN_ADDR".into(), self.control_addr.clone()));
            self.env.push(("SYNAP_PORTAL__PUBLIC_URL".into(), self.portal_url.clone()));
            self.env.push(("SYNAP_PORTAL__LISTEN_ADDR".into(), portal_addr));
        }
        self.spawn(replica);
    }

    async fn wait_for_control(&mut self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut restarts = 0;
        loop {
            // Exited first: a control that found its port taken must not pass for listening
            // because another process answers there.
            if let Some(child) = self.children.get_mut(&Service::Control.into())
                && let Ok(Some(status)) = child.try_wait()
            {
                self.restart_after_port_clash(Service::Control.into(), status, &mut restarts);
                continue;
            }
            // A TCP connection, not a gRPC channel: the same wait serves a control on TLS.
            if tokio::net::TcpStream::connect(&self.control_addr).await.is_ok() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "control not up within 30 s; see {}",
                self.logs.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A gRPC channel to control (plaintext), whose calls fail after a minute rather than hang
    /// a test on a control that stopped answering.
    pub async fn control_channel(&self) -> Channel {
        let endpoint = Channel::from_shared(format!("http://{}", self.control_addr))
            .unwrap()
            .timeout(Duration::from_secs(60));
        tokio::time::timeout(Duration::from_secs(30), endpoint.connect())
            .await
            .unwrap_or_else(|_| {
                panic!("no gRPC connection to control within 30 s; see {}", self.logs.display())
            })
            .unwrap()
    }

    /// A control client authenticated with the admin token.
    pub async fn control(&self) -> Control {
        ControlServiceClient::with_interceptor(self.control_channel().await, AdminAuth)
    }

    /// A delivery API client authenticated with the admin token.
    pub async fn deliveries(&self) -> Deliveries {
        DeliveryServiceClient::with_interceptor(self.control_channel().await, AdminAuth)
    }

    /// Where a replica (a [`Service`] alone: replica 0) serves `/metrics`, `/healthz` and
    /// `/readyz`.
    pub fn telemetry_addr(&self, replica: impl Into<Replica>) -> &str {
        &self.telemetry_addrs[&replica.into()]
    }

    /// GETs `path` from a replica's telemetry server: the status code and the body.
    pub async fn telemetry_get(&self, replica: impl Into<Replica>, path: &str) -> (u16, String) {
        let url = format!("http://{}{path}", self.telemetry_addr(replica));
        let response = telemetry_client().get(&url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// The value of one sample in a replica's `/metrics` (`name` with its labels, as written
    /// there: `synap_deliveries_deferred_total{reason="queue_full"}`); `None` if it has none.
    pub async fn metric(&self, replica: impl Into<Replica>, sample: &str) -> Option<f64> {
        let (_, metrics) = self.telemetry_get(replica, "/metrics").await;
        metrics.lines().find_map(|line| {
            let value = line.strip_prefix(sample)?.strip_prefix(' ')?;
            Some(value.trim().parse().unwrap_or_else(|e| panic!("{sample}: {value:?}: {e}")))
        })
    }

    /// Polls one sample of a replica's `/metrics` ([`Stack::metric`]) until `until` holds for
    /// it, and returns it; panics with the last value after `timeout`. For what a service
    /// reaches on its own time, e.g. a circuit opening after the test's other checks.
    pub async fn wait_for_metric(
        &self,
        replica: impl Into<Replica>,
        sample: &str,
        timeout: Duration,
        until: impl Fn(Option<f64>) -> bool,
    ) -> Option<f64> {
        let replica = replica.into();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let value = self.metric(replica, sample).await;
            if until(value) {
                return value;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{replica:?}: {sample} is {value:?} after {timeout:?}; the end of its log:\n{}",
                self.log_tail(replica, 40)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The last `lines` lines of a replica's log: for a failure's message, as CI keeps no files.
    pub fn log_tail(&self, replica: impl Into<Replica>, lines: usize) -> String {
        let replica = replica.into();
        let path = self.logs.join(replica.service.log_name(replica.index));
        match std::fs::read_to_string(&path) {
            Ok(log) => {
                let all: Vec<&str> = log.lines().collect();
                all[all.len().saturating_sub(lines)..].join("\n")
            }
            Err(e) => format!("({}: {e})", path.display()),
        }
    }

    /// Waits until every running replica answers 200 on `/readyz`.
    pub async fn wait_ready(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        for replica in self.children.keys() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            self.wait_for_readyz(*replica, 200, left).await;
        }
    }

    /// Polls a replica's `/readyz` until it answers `status` (a connection error counts as not
    /// yet), and returns the body; panics with the last answer after `within`.
    pub async fn wait_for_readyz(
        &self,
        replica: impl Into<Replica>,
        status: u16,
        within: Duration,
    ) -> String {
        let replica = replica.into();
        let url = format!("http://{}/readyz", self.telemetry_addr(replica));
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let last = match telemetry_client().get(&url).send().await {
                Ok(r) if r.status().as_u16() == status => return r.text().await.unwrap_or_default(),
                Ok(r) => format!("{}: {}", r.status(), r.text().await.unwrap_or_default()),
                Err(e) => e.to_string(),
            };
            assert!(
                tokio::time::Instant::now() < deadline,
                "{replica:?}: /readyz not {status} within {within:?} ({last}); see {}",
                self.logs.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every service log of this stack, concatenated.
    pub fn all_logs(&self) -> String {
        let mut text = String::new();
        for entry in std::fs::read_dir(&self.logs).unwrap().flatten() {
            text.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
        }
        text
    }

    pub fn topic(&self, name: &str) -> String {
        format!("{}.{name}", self.id)
    }

    pub fn group(&self, service: Service) -> String {
        format!("{}.{}", self.id, service.group())
    }
}

impl Drop for Stack {
    /// Kills the services and drops the database, also when the test panicked.
    fn drop(&mut self) {
        for child in self.children.values_mut() {
            let _ = child.start_kill();
        }
        let (url, database) = (self.admin_url.clone(), self.database.clone());
        // Drop cannot await; a private runtime on its own thread works inside any runtime.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            // Bounded: a server that does not answer leaves a database behind, not a hung test.
            // (The timeout is made inside the runtime: its timer needs one.)
            runtime.block_on(async {
                let dropped = async {
                    let Ok((client, connection)) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await
                    else {
                        return;
                    };
                    tokio::spawn(connection);
                    let drop = format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)");
                    // FORCE cannot end a backend of another role, and an autovacuum worker that
                    // happens to be vacuuming the database is one (2 databases in a suite of 382
                    // tests were left behind this way). It finishes within seconds: the server's
                    // refusal is tried again; a lost connection is not.
                    while let Err(e) = client.batch_execute(&drop).await {
                        if e.as_db_error().is_none() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                };
                let _ = tokio::time::timeout(Duration::from_secs(10), dropped).await;
            })
        })
        .join();
    }
}

async fn create_database(admin_url: &str, name: &str) {
    let (client, connection) =
        tokio_postgres::connect(admin_url, tokio_postgres::NoTls).await.unwrap_or_else(|e| {
            panic!("cannot reach PostgreSQL at {admin_url} (scripts/test.sh starts it): {e}")
        });
    tokio::spawn(connection);
    client.batch_execute(&format!("CREATE DATABASE \"{name}\"")).await.unwrap();
}
