//! Guanxi's HTTP server: the axum application with the generic record API, metadata, audit and
//! job routes, the error envelope, OpenAPI, metrics and configuration. Business modules plug in
//! under `modules/`.

#![allow(
    clippy::result_large_err,
    reason = "ApiError is built only on the error path; boxing it would only add noise to every handler"
)]

pub mod app;
pub mod config;
pub mod demo;
pub mod error;
pub mod extract;
pub mod mail;
pub mod modules;
pub mod openapi;
pub mod routes;
pub mod state;
pub mod telemetry;
pub mod web;

pub use app::{AppOptions, Application};
pub use config::Config;
