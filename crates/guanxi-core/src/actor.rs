//! Who is acting. Every engine call takes an [`Actor`]; the audit trail, state history and
//! ownership defaults come from it, and permission checks ask it.

use std::sync::Arc;

use crate::access::{Access, FieldRule, Scope};

/// The user (or system process) on whose behalf a change is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub id: String,
    pub name: String,
    pub department_id: Option<String>,
    /// `None` for the system itself (migrations, jobs, the command line): unrestricted.
    pub access: Option<Arc<Access>>,
}

impl Actor {
    /// The built-in system actor used by jobs and the command line.
    pub fn system() -> Actor {
        Actor {
            id: "system".into(),
            name: "系统".into(),
            department_id: None,
            access: None,
        }
    }

    /// The scope of `action` on `object`, or `None` when not allowed.
    pub fn scope(&self, object: &str, action: &str) -> Option<Scope> {
        match &self.access {
            None => Some(Scope::All),
            Some(a) => a.scope(object, action),
        }
    }

    /// Whether the actor holds a permission written `object.action` (e.g. `customer.mark_lost`).
    pub fn can(&self, permission: &str) -> bool {
        let (object, action) = permission.split_once('.').unwrap_or((permission, "*"));
        self.scope(object, action).is_some()
    }

    pub fn field_rule(&self, object: &str, field: &str) -> Option<FieldRule> {
        self.access.as_ref().and_then(|a| a.field_rule(object, field))
    }

    /// Whether any field of the object is hidden or read-only for the actor.
    pub fn restricts_fields(&self, object: &str) -> bool {
        self.access.as_ref().is_some_and(|a| a.restricts_fields(object))
    }

    /// Whether nothing restricts the actor (the system actor).
    pub fn is_unrestricted(&self) -> bool {
        self.access.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Grants;

    #[test]
    fn the_system_may_do_anything_and_a_user_what_its_roles_grant() {
        assert!(Actor::system().can("customer.mark_lost"));
        let mut grants = Grants::new();
        grants
            .entry("customer".into())
            .or_default()
            .insert("sign".into(), Scope::All);
        let clerk = Actor {
            access: Some(Arc::new(Access {
                grants,
                ..Access::default()
            })),
            ..Actor::system()
        };
        assert!(clerk.can("customer.sign"));
        assert!(!clerk.can("customer.mark_lost"));
    }
}
