//! Business modules as vertical slices. A module contributes hooks for its objects (and, as the
//! product grows, workflow routes and job handlers); the generic engine does the rest.

pub mod customers;
pub mod files;
pub mod identity;
pub mod organisation;
pub mod transfer;
pub mod views;

use std::sync::Arc;

use guanxi_store::hooks::HookRegistry;

/// Hooks of every built-in module.
pub fn hooks(
    config: &crate::config::Config,
    identity: &Arc<identity::IdentityState>,
    engine: &customers::EngineCell,
) -> HookRegistry {
    let mut registry = HookRegistry::default();
    registry.register("lead", Arc::new(customers::LeadHooks { engine: engine.clone() }));
    registry.register(
        "department",
        Arc::new(organisation::DepartmentHooks {
            identity: identity.clone(),
        }),
    );
    identity::register_hooks(&mut registry, config, identity);
    registry
}
