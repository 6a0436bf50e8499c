//! The HTTP service: the `/customers` handler, whose lookups a `KeyedGroup` coalesces, its
//! input validation, and the server.

use super::*;

/// The handler's state: the database and the group that coalesces its lookups.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) db: Arc<Database>,
    pub(crate) group: Arc<KeyedGroup<String, Lookup>>,
}

/// The query string of `GET /customers`.
#[derive(Debug, Deserialize)]
pub(crate) struct Params {
    pub(crate) name: Option<String>,
    pub(crate) coalesce: Option<bool>,
}

/// The router: `GET /customers?name=..[&coalesce=false]` and `GET /stats`.
pub(crate) fn app(db: Arc<Database>, group: Arc<KeyedGroup<String, Lookup>>) -> Router {
    let state = AppState { db, group };
    Router::new()
        .route("/customers", get(customer))
        .route("/stats", get(stats))
        .with_state(state)
}

/// `GET /stats`: the group's counters, as JSON.
pub(crate) async fn stats(State(state): State<AppState>) -> Response {
    Json(stats_json(&state.group.stats())).into_response()
}

/// The counters of a group as a JSON object.
pub(crate) fn stats_json(stats: &GroupStats) -> serde_json::Value {
    json!({
        "started": stats.started,
        "joined": stats.joined,
        "abandoned": stats.abandoned,
        "panicked": stats.panicked,
        "forgotten": stats.forgotten,
        "detached": stats.detached,
        "expired": stats.expired,
        "in_flight": stats.in_flight,
    })
}

/// `GET /customers`: the customer's id as JSON.
pub(crate) async fn customer(
    State(state): State<AppState>,
    params: Result<Query<Params>, QueryRejection>,
) -> Response {
    let params = match params {
        Ok(Query(params)) => params,
        Err(rejection) => return error(StatusCode::BAD_REQUEST, rejection.body_text()),
    };
    let name = match validate(params.name) {
        Ok(name) => name,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };

    let (lookup, role) = if params.coalesce.unwrap_or(true) {
        let db = state.db.clone();
        // The closure runs only if this request starts the flight (it makes the flight's
        // `String` key from `&name`); the others join it.
        let outcome = state
            .group
            .call_ref(name.as_str(), move |name| db.customer_id(name))
            .with_role()
            .await;
        let role = match outcome.role {
            Role::Started => "started",
            Role::Joined => "joined",
        };
        (outcome.value, role)
    } else {
        (state.db.clone().customer_id(name.clone()).await, "bypassed")
    };

    let shared = [("x-single-flight-role", role)];
    match lookup {
        Ok(Some(id)) => (shared, Json(Customer { name, id })).into_response(),
        Ok(None) => (
            shared,
            error(StatusCode::NOT_FOUND, format!("no customer named {name:?}")),
        )
            .into_response(),
        Err(e) => {
            eprintln!("GET /customers?name={name:?}: database failure: {e}");
            (
                shared,
                error(StatusCode::INTERNAL_SERVER_ERROR, "database failure"),
            )
                .into_response()
        }
    }
}

/// The body of a 200 answer.
#[derive(Debug, Serialize)]
pub(crate) struct Customer {
    pub(crate) name: String,
    pub(crate) id: i64,
}

/// Checks the `name` parameter.
pub(crate) fn validate(name: Option<String>) -> Result<String, String> {
    let name = name.ok_or("missing query parameter `name`")?;
    if name.is_empty() {
        return Err("`name` is empty".into());
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(format!("`name` is longer than {MAX_NAME_CHARS} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("`name` contains non-printable characters".into());
    }
    // The query-string parser decodes invalid UTF-8 to U+FFFD instead of failing.
    if name.contains(char::REPLACEMENT_CHARACTER) {
        return Err("`name` is not valid UTF-8".into());
    }
    Ok(name)
}

/// A JSON error body: `{"error": message}`.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// Binds `addr` and serves the app in a background task; returns the bound address.
pub(crate) async fn start_server(
    addr: &str,
    db: Arc<Database>,
    group: Arc<KeyedGroup<String, Lookup>>,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app(db, group)).await {
            eprintln!("server stopped: {e}");
        }
    });
    Ok(local)
}
