//! Business modules as vertical slices. A module contributes hooks for its objects (and, as the
//! product grows, workflow routes and job handlers); the generic engine does the rest.

pub mod classification;
pub mod customer_duplicates;
pub mod customer_merge;
pub mod customer_stats;
pub mod customers;
pub mod files;
pub mod identity;
pub mod organisation;
pub mod pool;
pub mod regions;
pub mod transfer;
pub mod views;

use std::sync::Arc;

use guanxi_store::hooks::HookRegistry;
use guanxi_store::regions::RegionCache;

/// Hooks of every built-in module.
pub fn hooks(
    config: &crate::config::Config,
    identity: &Arc<identity::IdentityState>,
    engine: &customers::EngineCell,
    regions: &Arc<RegionCache>,
) -> HookRegistry {
    let mut registry = HookRegistry::default();
    registry.register("lead", Arc::new(customers::LeadHooks { engine: engine.clone() }));
    for object in ["customer", "lead"] {
        registry.register(
            object,
            Arc::new(regions::RegionHooks {
                regions: regions.clone(),
            }),
        );
    }
    registry.register("follow_up", Arc::new(pool::FollowUpHooks));
    registry.register("customer", Arc::new(customer_duplicates::DuplicateKeyHooks));
    registry.register(
        "department",
        Arc::new(organisation::DepartmentHooks {
            identity: identity.clone(),
        }),
    );
    identity::register_hooks(&mut registry, config, identity);
    registry
}
