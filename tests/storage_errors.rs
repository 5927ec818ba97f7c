//! Storage errors name their cause and come in bounded time: a closed port
//! at connect, and a database that goes away under a running storage.

use std::str::FromStr;
use std::time::{Duration, Instant};

use jobs::ConnectOptions;
use jobs::prelude::*;
use jobs::storage::PostgresStorage;
use jobs_runtime::testing::{fresh_postgres, postgres_url};
use sqlx::postgres::PgConnectOptions;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Far beyond the connect timeout, far below the 30 s a pool used to wait.
const BOUND: Duration = Duration::from_secs(10);

/// A port on this machine with nothing listening.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn connecting_to_a_closed_port_fails_at_once_naming_the_refusal() {
    let url = format!("postgres://postgres@127.0.0.1:{}/test", closed_port());
    let started = Instant::now();
    let error = Storage::connect(&url).await.unwrap_err();
    assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());
    let text = error.to_string();
    assert!(text.contains("refused"), "{text}");
    assert!(text.contains("127.0.0.1"), "{text}");
    assert!(error.is_transient(), "{error:?}");
}

/// Forwards connections to PostgreSQL until dropped.
struct Proxy {
    port: u16,
    tasks: JoinSet<()>,
}

impl Proxy {
    async fn start(target: (String, u16)) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                let target = target.clone();
                connections.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Proxy { port, tasks }
    }

    /// Closes the port and every forwarded connection.
    async fn stop(mut self) {
        self.tasks.shutdown().await;
    }
}

#[tokio::test]
async fn a_database_that_goes_away_gives_errors_naming_the_cause() {
    let Some(pg) = fresh_postgres().await else {
        return;
    };
    let options = PgConnectOptions::from_str(&postgres_url()).unwrap();
    let target = (options.get_host().to_owned(), options.get_port());
    let proxy = Proxy::start(target).await;
    let url = format!(
        "postgres://{}@127.0.0.1:{}/{}",
        options.get_username(),
        proxy.port,
        options.get_database().unwrap_or("postgres")
    );
    let pool = ConnectOptions::new().acquire_timeout(Duration::from_secs(1));
    let storage = PostgresStorage::connect_with_options(&url, pg.storage.schema(), &pool)
        .await
        .unwrap();
    let storage = Storage::new(storage);
    let client = Client::new(storage.clone());
    client.enqueue(Probe { n: 1 }).await.unwrap();

    proxy.stop().await;
    // The pooled connection is dead (its error is the broken connection);
    // then no connection can be opened, and the error says why.
    let mut last = None;
    for _ in 0..3 {
        let started = Instant::now();
        let error = client.enqueue(Probe { n: 2 }).await.unwrap_err();
        assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());
        assert!(error.is_transient(), "{error:?}");
        last = Some(error.to_string());
    }
    let last = last.unwrap();
    assert!(last.contains("refused"), "{last}");
    assert!(last.contains("enqueueing jobs"), "{last}");
}

/// A job for the enqueues above; never run.
#[job(name = "storage_errors.probe")]
async fn probe(n: u64) {
    let _ = n;
}
