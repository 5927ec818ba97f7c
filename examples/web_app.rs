//! A web application with background jobs: an axum app whose signup
//! handler writes its own row and enqueues the welcome mail in the same
//! database transaction, a `jobs` server in the same process that sends
//! it, and the jobs dashboard nested under `/jobs`.
//!
//! ```text
//! cargo run --example web_app                     # SQLite in a temporary directory, on 127.0.0.1:3000
//! cargo run --example web_app -- --database sqlite://web_app.db --bind 127.0.0.1:8080
//! cargo run --example web_app -- --database postgres://postgres@127.0.0.1/test
//! ```
//!
//! Then, from another terminal:
//!
//! ```text
//! curl -i -H 'Content-Type: application/json' -d '{"email":"ann@example.com","name":"Ann"}' http://127.0.0.1:3000/signup
//! curl -i -d 'email=bob@example.com&name=Bob' http://127.0.0.1:3000/signup   # a form works too
//! curl -i -d 'email=ANN@example.com&name=Ann again' http://127.0.0.1:3000/signup  # 409: no second mail
//! curl -i -d 'email=nobody&name=X' http://127.0.0.1:3000/signup               # 400, with the reason
//! curl -i http://127.0.0.1:3000/signups/1     # the row, and where its welcome mail is
//! open http://127.0.0.1:3000/jobs             # the dashboard: the job and its history
//! ```
//!
//! `POST /signup` enqueues `send_welcome_mail` first, inside the
//! transaction, and then inserts the signup row that records the job's id.
//! When the insert fails (the address signed up already: a unique
//! constraint), the handler returns and the dropped transaction rolls back
//! the job with the row: `409 Conflict`, and no mail goes out twice. When
//! it commits, both exist, and only then can the server see the job. That
//! works with the application's own `sqlx` transaction on PostgreSQL (the
//! application's pool, `PostgresStorage::from_pool`; `--schema` names the
//! jobs' schema, default `jobs`) and on SQLite (the storage's pool, the same
//! file).
//!
//! The program prints `listening on http://ADDR` once it serves (with the
//! port bound, also for `--bind 127.0.0.1:0`), stops on Ctrl-C (or
//! SIGTERM): no new requests, the running ones answered, the server's jobs
//! finished or given back. The dashboard serves loopback clients only; one
//! for others needs an `Authorize` rule (see `jobs::dashboard::Dashboard`).

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use anyhow::Context as _;
use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, Path, Request, State as AppState};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use clap::Parser;
use jobs::prelude::*;
use jobs::storage::{InSchema, PostgresStorage, SqliteStorage};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, SqlitePool};

/// Sends the welcome mail to a new signup (here: prints it), and records on
/// the signup's row when it went out.
#[job(queue = "mail", retries = 5)]
async fn send_welcome_mail(
    ctx: JobContext,
    email: String,
    name: String,
) -> Result<(), sqlx::Error> {
    ctx.log(format!("sending the welcome mail to {name} <{email}>"));
    println!("job {}: welcome mail sent to {name} <{email}>", ctx.id());
    // A job has no handle on the application's state: it reads a static
    // set before the server starts.
    let db = DB.get().expect("set before the server starts");
    db.mark_welcomed(&email, &chrono::Utc::now().to_rfc3339())
        .await
}

/// The application's database, for jobs.
static DB: OnceLock<Db> = OnceLock::new();

#[derive(Parser)]
#[command(
    about = "A web app that enqueues jobs in its own transactions, with the dashboard at /jobs"
)]
struct Args {
    /// The database of the application and of its jobs: sqlite://PATH or
    /// postgres://USER@HOST/DB (default: a new SQLite file in a temporary
    /// directory).
    #[arg(long)]
    database: Option<String>,
    /// PostgreSQL only: the schema of the jobs' tables (default: `jobs`).
    #[arg(long)]
    schema: Option<String>,
    /// The address to serve on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:3000")]
    bind: String,
    /// Jobs run at once.
    #[arg(long, default_value_t = 4)]
    workers: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let temp = tempfile::tempdir()?;
    let url = args
        .database
        .unwrap_or_else(|| format!("sqlite://{}", temp.path().join("web_app.db").display()));

    let (storage, db) = open(&url, args.schema).await?;
    db.create_tables().await?;
    let db = DB.get_or_init(|| db);

    let app = Router::new()
        .route("/", get(index))
        .route("/signup", post(signup))
        .route("/signups/{id}", get(show_signup))
        .with_state(Arc::new(App {
            db,
            storage: storage.clone(),
        }))
        // A `Router<()>`: nested once the application's state is given.
        .nest("/jobs", jobs::dashboard::router(storage.clone()))
        // Nested, the overview is `/jobs` only (axum 0.8), where its menu
        // links: a `/jobs/` typed by hand is sent there.
        .route("/jobs/", get(|| async { Redirect::permanent("/jobs") }));
    let listener = tokio::net::TcpListener::bind(&args.bind)
        .await
        .with_context(|| format!("cannot listen on {}", args.bind))?;
    let address = listener.local_addr()?;
    // The server runs the jobs the handlers enqueue, in this process.
    let server = Server::builder(storage.clone())
        .workers(args.workers)
        .queues(["mail", "default"])
        .start()?;
    println!("storage: {url}");
    println!("listening on http://{address}");
    println!("dashboard: http://{address}/jobs");

    // The dashboard's loopback rule needs the peer's address.
    let serving = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await;
    // Stop the server whether or not serving failed.
    server.shutdown().await;
    serving.context("serving HTTP")?;
    println!("stopped");
    Ok(())
}

/// Opens the storage, and the application's database beside it.
async fn open(url: &str, schema: Option<String>) -> anyhow::Result<(Storage, Db)> {
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        // The application's own pool; the jobs' tables in their schema
        // (`jobs`, as `PostgresStorage::connect` has it, unless told).
        // Lazy: `from_pool` opens the first connection, and says why it
        // could not at once (a pool's own `connect` waits 30 s and only
        // says that it timed out).
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .connect_lazy(url)
            .with_context(|| format!("cannot use {url}"))?;
        let storage = PostgresStorage::from_pool(pool.clone(), schema.as_deref().unwrap_or("jobs"))
            .await
            .with_context(|| format!("cannot open the jobs' tables at {url}"))?;
        Ok((Storage::new(storage), Db::Postgres { pool, schema }))
    } else if url.starts_with("sqlite:") {
        anyhow::ensure!(schema.is_none(), "--schema is for PostgreSQL only");
        // Enqueueing in a transaction on SQLite needs the storage's own
        // file: the application writes through the storage's pool.
        let storage = SqliteStorage::connect(url)
            .await
            .with_context(|| format!("cannot open {url}"))?;
        let db = Db::Sqlite(storage.pool().clone());
        Ok((Storage::new(storage), db))
    } else {
        anyhow::bail!("--database must be sqlite://PATH or postgres://USER@HOST/DB, not {url:?}")
    }
}

/// Resolves on Ctrl-C, or on SIGTERM (as a container is stopped).
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    println!("shutting down");
}

/// What the handlers share.
struct App {
    db: &'static Db,
    storage: Storage,
}

/// The application's database: its `signups` table lives beside the jobs.
enum Db {
    Sqlite(SqlitePool),
    Postgres {
        pool: PgPool,
        /// The jobs' schema, when not the default one.
        schema: Option<String>,
    },
}

const CREATE_SQLITE: &str = "CREATE TABLE IF NOT EXISTS signups (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    welcome_job BIGINT NOT NULL,
    welcomed_at TEXT)";
const CREATE_POSTGRES: &str = "CREATE TABLE IF NOT EXISTS signups (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    welcome_job BIGINT NOT NULL,
    welcomed_at TEXT)";
/// The statements both databases share (`$n` parameters work in SQLite too).
const INSERT: &str =
    "INSERT INTO signups (email, name, welcome_job) VALUES ($1, $2, $3) RETURNING id";
const SELECT: &str = "SELECT id, email, name, welcome_job, welcomed_at FROM signups WHERE id = $1";
const MARK_WELCOMED: &str = "UPDATE signups SET welcomed_at = $2 WHERE email = $1";

/// A row of `signups`.
#[derive(sqlx::FromRow, serde::Serialize)]
struct Signup {
    id: i64,
    email: String,
    name: String,
    welcome_job: i64,
    welcomed_at: Option<String>,
}

impl Db {
    async fn create_tables(&self) -> Result<(), sqlx::Error> {
        match self {
            Db::Sqlite(pool) => sqlx::query(CREATE_SQLITE).execute(pool).await.map(drop),
            Db::Postgres { pool, .. } => sqlx::query(CREATE_POSTGRES).execute(pool).await.map(drop),
        }
    }

    /// Enqueues the welcome mail and inserts the signup that records it, in
    /// one transaction: both are stored, or neither. Returns the signup's
    /// id and the job's.
    async fn sign_up(&self, email: &str, name: &str) -> Result<(i64, JobId), AppError> {
        match self {
            Db::Sqlite(pool) => {
                // IMMEDIATE: take the write lock now (see `EnqueueInTransaction`).
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let job =
                    send_welcome_mail::enqueue_in_tx(&mut tx, email.into(), name.into()).await?;
                let id: i64 = sqlx::query_scalar(INSERT)
                    .bind(email)
                    .bind(name)
                    .bind(JobId::from(job).get())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|error| AppError::from_insert(error, email))?;
                tx.commit().await?;
                Ok((id, job.into()))
            }
            Db::Postgres { pool, schema } => {
                let mut tx = pool.begin().await?;
                let job = match schema {
                    // The jobs' tables in the default schema: the transaction itself.
                    None => {
                        send_welcome_mail::enqueue_in_tx(&mut tx, email.into(), name.into()).await?
                    }
                    // In another schema: the transaction's connection, and where they are.
                    Some(schema) => {
                        let mut in_schema = InSchema::new(&mut tx, schema);
                        send_welcome_mail::enqueue_in_tx(&mut in_schema, email.into(), name.into())
                            .await?
                    }
                };
                let id: i64 = sqlx::query_scalar(INSERT)
                    .bind(email)
                    .bind(name)
                    .bind(JobId::from(job).get())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|error| AppError::from_insert(error, email))?;
                tx.commit().await?;
                Ok((id, job.into()))
            }
        }
    }

    async fn signup(&self, id: i64) -> Result<Option<Signup>, sqlx::Error> {
        match self {
            Db::Sqlite(pool) => sqlx::query_as(SELECT).bind(id).fetch_optional(pool).await,
            Db::Postgres { pool, .. } => sqlx::query_as(SELECT).bind(id).fetch_optional(pool).await,
        }
    }

    async fn mark_welcomed(&self, email: &str, at: &str) -> Result<(), sqlx::Error> {
        match self {
            Db::Sqlite(pool) => {
                let query = sqlx::query(MARK_WELCOMED).bind(email).bind(at);
                query.execute(pool).await.map(drop)
            }
            Db::Postgres { pool, .. } => {
                let query = sqlx::query(MARK_WELCOMED).bind(email).bind(at);
                query.execute(pool).await.map(drop)
            }
        }
    }
}

/// `GET /`: what this app serves.
async fn index() -> &'static str {
    "POST /signup          email, name (JSON or a form): 201, or 409 when the email signed up already\n\
     GET  /signups/{id}    a signup and its welcome mail's job\n\
     GET  /jobs            the jobs dashboard\n"
}

/// What `POST /signup` takes, as JSON or as a form.
#[derive(Deserialize)]
struct SignupForm {
    email: String,
    name: String,
}

/// `POST /signup`: stores the signup and enqueues its welcome mail in one
/// transaction; `201` with both ids.
async fn signup(AppState(app): AppState<Arc<App>>, request: Request) -> Result<Response, AppError> {
    let form = read_form(request).await?;
    let email = valid_email(&form.email)?;
    let name = valid_name(&form.name)?;
    let (id, job) = app.db.sign_up(&email, &name).await?;
    let body = json!({
        "signup": id,
        "email": email,
        "job": job.get(),
        "job_url": format!("/jobs/job/{job}"),
    });
    Ok(json_response(StatusCode::CREATED, &body))
}

/// The body of `POST /signup`, by its `Content-Type`.
async fn read_form(request: Request) -> Result<SignupForm, AppError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let essence = content_type.split(';').next().unwrap_or("").trim();
    match essence {
        "application/json" => {
            let body = axum::body::Bytes::from_request(request, &())
                .await
                .map_err(|rejection| AppError::BadRequest(rejection.body_text()))?;
            serde_json::from_slice(&body)
                .map_err(|error| AppError::BadRequest(format!("invalid JSON body: {error}")))
        }
        "application/x-www-form-urlencoded" => axum::Form::<SignupForm>::from_request(request, &())
            .await
            .map(|axum::Form(form)| form)
            .map_err(|rejection| AppError::BadRequest(rejection.body_text())),
        _ => Err(AppError::UnsupportedMediaType(format!(
            "send the signup as JSON (Content-Type: application/json) or as a form \
             (application/x-www-form-urlencoded), not {:?}",
            content_type
        ))),
    }
}

/// The address, trimmed and lower-cased, if it looks like one.
fn valid_email(email: &str) -> Result<String, AppError> {
    let email = email.trim().to_lowercase();
    let parts = email.split_once('@');
    let plausible = parts.is_some_and(|(local, domain)| {
        !local.is_empty() && domain.contains('.') && !domain.contains('@')
    });
    if !plausible || email.len() > 254 || email.chars().any(char::is_whitespace) {
        return Err(AppError::BadRequest(format!(
            "email must be an address like ann@example.com, not {email:?}"
        )));
    }
    Ok(email)
}

/// The name, trimmed, if it is one.
fn valid_name(name: &str) -> Result<String, AppError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AppError::BadRequest(
            "name must be 1 to 100 characters, without control characters".to_owned(),
        ));
    }
    Ok(name.to_owned())
}

/// `GET /signups/{id}`: the signup, and the state of its welcome mail's job.
async fn show_signup(
    AppState(app): AppState<Arc<App>>,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Response, AppError> {
    let Path(id) = id.map_err(|rejection| AppError::BadRequest(rejection.body_text()))?;
    let signup = app
        .db
        .signup(id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no signup with id {id}")))?;
    let job = app.storage.job(JobId(signup.welcome_job)).await?;
    let body = json!({
        "signup": signup,
        "welcome_mail": job.map(|job| json!({
            "state": job.state.to_string(),
            "url": format!("/jobs/job/{}", job.id),
        })),
    });
    Ok(json_response(StatusCode::OK, &body))
}

/// An answer other than success, as `{"error": "..."}`.
enum AppError {
    BadRequest(String),
    UnsupportedMediaType(String),
    NotFound(String),
    Conflict(String),
    Internal(String),
}

impl AppError {
    /// A unique violation on insert is a duplicate signup.
    fn from_insert(error: sqlx::Error, email: &str) -> AppError {
        match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => AppError::Conflict(format!(
                "{email} has signed up already; the transaction was rolled back and no welcome mail was enqueued"
            )),
            _ => error.into(),
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(error: sqlx::Error) -> Self {
        AppError::Internal(format!("database: {error}"))
    }
}

impl From<jobs::Error> for AppError {
    fn from(error: jobs::Error) -> Self {
        AppError::Internal(format!("jobs: {error}"))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            AppError::BadRequest(message) => (StatusCode::BAD_REQUEST, message),
            AppError::UnsupportedMediaType(message) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, message)
            }
            AppError::NotFound(message) => (StatusCode::NOT_FOUND, message),
            AppError::Conflict(message) => (StatusCode::CONFLICT, message),
            AppError::Internal(message) => {
                // The details go to the log, not to the client.
                eprintln!("internal error: {message}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error".to_owned(),
                )
            }
        };
        json_response(status, &json!({ "error": message }))
    }
}

/// `value` as a JSON answer (the workspace's axum has no `json` feature).
fn json_response(status: StatusCode, value: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}
