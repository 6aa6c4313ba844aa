//! A throwaway PostgreSQL cluster for tests that stop the database: the shared one serves every
//! other test and must stay up.

use std::path::PathBuf;
use std::process::Command;

const BIN: &str = "/usr/lib/postgresql/15/bin";

pub struct Throwaway {
    pub dir: PathBuf,
    pub port: u16,
}

/// Runs `command` as the `postgres` user (PostgreSQL refuses to run as root).
fn as_postgres(command: &str) {
    let output = Command::new("su").args(["postgres", "-c", command]).output().expect("su postgres");
    assert!(
        output.status.success(),
        "{command} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Throwaway {
    /// Creates and starts a cluster on a free port (trust authentication, loopback only).
    pub fn start() -> Self {
        let port = crate::stack::free_ports(1)[0];
        let dir = std::env::temp_dir().join(format!("synap-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let status =
            Command::new("chown").args(["postgres:postgres", &dir.display().to_string()]).status().unwrap();
        assert!(status.success(), "chown {}", dir.display());
        as_postgres(&format!(
            "{BIN}/initdb -D {} -U postgres --auth=trust >/dev/null",
            dir.join("data").display()
        ));
        let cluster = Self { dir, port };
        cluster.resume();
        cluster
    }

    /// The superuser URL, for `Stack::start_on`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server (fast shutdown: open connections are cut).
    pub fn pause(&self) {
        as_postgres(&format!(
            "{BIN}/pg_ctl -D {} -m fast -w stop >/dev/null",
            self.dir.join("data").display()
        ));
    }

    /// Suspends every process of the server (SIGSTOP) without closing anything: connections stay
    /// open and nothing answers on them, as with a hung host or a route that drops packets. It
    /// runs again (SIGCONT, answering what waited) when the guard is dropped: declared after the
    /// stack, the guard goes first when a test panics, so the stack can still drop its database.
    pub fn freeze(&self) -> Frozen<'_> {
        self.signal("STOP");
        Frozen(self)
    }

    /// Sends `-<signal>` to the postmaster first (so that it starts no new process meanwhile),
    /// then to its children: backends and background workers.
    fn signal(&self, signal: &str) {
        let pid_file = std::fs::read_to_string(self.dir.join("data/postmaster.pid")).expect("postmaster.pid");
        let pid = pid_file.lines().next().expect("the postmaster's pid").trim().to_owned();
        let status = Command::new("kill").args([&format!("-{signal}"), &pid]).status().unwrap();
        assert!(status.success(), "kill -{signal} {pid}");
        // Exit status 1: no child (none matched), which is fine.
        Command::new("pkill").args([&format!("-{signal}"), "-P", &pid]).status().unwrap();
    }

    /// Starts the server again.
    pub fn resume(&self) {
        as_postgres(&format!(
            "{BIN}/pg_ctl -D {data} -l {log} -o '-p {port} -k {dir} -c listen_addresses=127.0.0.1 -c fsync=off' -w start >/dev/null",
            data = self.dir.join("data").display(),
            log = self.dir.join("server.log").display(),
            port = self.port,
            dir = self.dir.display(),
        ));
    }
}

/// A frozen server ([`Throwaway::freeze`]); dropping it lets the server run again.
pub struct Frozen<'a>(&'a Throwaway);

impl Drop for Frozen<'_> {
    fn drop(&mut self) {
        self.0.signal("CONT");
    }
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        let _ = Command::new("su")
            .args([
                "postgres",
                "-c",
                &format!("{BIN}/pg_ctl -D {} -m immediate -w stop", self.dir.join("data").display()),
            ])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits until `count_sql` (a `SELECT count(*)` of waiting sessions, in `pg_locks` or
/// `pg_stat_activity`) finds one, so that a test can act while another session is blocked;
/// panics with `what` after `within`.
pub async fn until_waiting(
    client: &tokio_postgres::Client,
    count_sql: &str,
    within: std::time::Duration,
    what: &str,
) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let waiting: i64 = client.query_one(count_sql, &[]).await.unwrap().get(0);
        if waiting > 0 {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
