//! The layer through a real hyper server on loopback, driven by a real HTTP client (hyper-util's
//! pooled client, or raw TCP where a client must vanish mid-request).
//!
//! "Semantics N" below cites the numbered semantics of the crate docs.
//!
//! Every test holds the upstream's answer until the requests it expects have reached the layer
//! (and, for the first one, joined or started their flight), so that "shared" and "not shared"
//! are decided by the layer and not by timing; then it asserts the number of upstream calls and
//! what each client got.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, Method, Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use single_flight_tower::{Coalesce, CoalesceLayer, SharedError};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::{Service, ServiceBuilder};

/// The role header every test turns on, to count who led, followed, fell back or passed.
pub(crate) const ROLE: HeaderName = HeaderName::from_static("x-coalesce-role");
/// How long the upstream waits for the expected requests before answering anyway (the test
/// then fails on its counts instead of hanging).
pub(crate) const GATE_LIMIT: Duration = Duration::from_secs(20);

pub(crate) type UpBody = BoxBody<Bytes, Infallible>;

mod bodies;
mod disconnect;
mod fixture;
mod misc;
mod sharing;
mod unkeyed;
mod vary;

use fixture::*;
