//! Shared application state: configuration, the database, the record engine and the metrics
//! handle. Cheap to clone (one `Arc`).

use std::ops::Deref;
use std::sync::Arc;

use guanxi_store::{Db, Engine};
use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::Config;

#[derive(Clone)]
pub struct AppState(pub Arc<AppInner>);

pub struct AppInner {
    pub config: Config,
    pub db: Db,
    pub engine: Engine,
    pub metrics: PrometheusHandle,
    pub identity: Arc<crate::modules::identity::IdentityState>,
    /// The region index that checks customer addresses.
    pub regions: Arc<guanxi_store::regions::RegionCache>,
}

impl Deref for AppState {
    type Target = AppInner;

    fn deref(&self) -> &AppInner {
        &self.0
    }
}
