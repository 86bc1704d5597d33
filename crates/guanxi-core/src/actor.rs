//! Who is acting. Every engine call takes an [`Actor`]; the audit trail, state history and
//! ownership defaults come from it, and permission checks ask it.

use std::collections::BTreeSet;

/// The user (or system process) on whose behalf a change is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub id: String,
    pub name: String,
    pub department_id: Option<String>,
    /// Permission names such as `customer.mark_lost`; `*` grants everything.
    pub permissions: BTreeSet<String>,
}

impl Actor {
    /// The built-in system actor used by migrations, jobs and the command line.
    pub fn system() -> Actor {
        Actor {
            id: "system".into(),
            name: "系统".into(),
            department_id: None,
            permissions: BTreeSet::from(["*".to_owned()]),
        }
    }

    /// Whether the actor holds a permission.
    pub fn can(&self, permission: &str) -> bool {
        self.permissions.contains("*") || self.permissions.contains(permission)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wildcard_grants_everything_and_names_grant_themselves() {
        assert!(Actor::system().can("customer.mark_lost"));
        let mut a = Actor::system();
        a.permissions = BTreeSet::from(["customer.sign".to_owned()]);
        assert!(a.can("customer.sign"));
        assert!(!a.can("customer.mark_lost"));
    }
}
