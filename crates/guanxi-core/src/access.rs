//! The permission model: what an actor may do with each object (an action with a data scope)
//! and how each field behaves for it (hidden, read-only). Roles grant these as data; the engine
//! applies them to every read, list, count, filter, sort, write and history view, so a handler
//! cannot forget a check.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Which records an action reaches, from narrowest to widest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Records the actor owns.
    #[serde(rename = "self")]
    Own,
    /// Records owned by the actor or by anyone who reports to the actor (directly or not).
    Subordinates,
    /// Records of the actor's department (for external partners: their own organisation, which
    /// is a department node flagged external).
    Department,
    /// Records of the actor's department and every department below it.
    DepartmentTree,
    /// Every record.
    All,
}

/// How a field behaves for a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldRule {
    /// Never shown, never filterable or sortable, never settable.
    Hidden,
    /// Shown but not settable.
    ReadOnly,
}

/// `object → action → scope`; `*` matches any object or action.
pub type Grants = BTreeMap<String, BTreeMap<String, Scope>>;
/// `object → field → rule`.
pub type FieldRules = BTreeMap<String, BTreeMap<String, FieldRule>>;

/// Everything the engine needs to decide for one signed-in user, computed at sign-in from the
/// user's roles, reporting line and department tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    pub grants: Grants,
    pub field_rules: FieldRules,
    /// Users who report to the actor, directly or indirectly.
    pub subordinate_ids: Vec<String>,
    /// The actor's department and all departments below it.
    pub department_tree_ids: Vec<String>,
}

impl Access {
    /// Merges the grants of several roles: the widest scope wins per action; a field is hidden
    /// only if every role that mentions the object hides it (a role that grants the object
    /// without a rule for the field shows it).
    pub fn merge_roles<'a>(roles: impl IntoIterator<Item = (&'a Grants, &'a FieldRules)>) -> (Grants, FieldRules) {
        let mut grants = Grants::new();
        let mut rules: Option<FieldRules> = None;
        for (g, r) in roles {
            for (object, actions) in g {
                let entry = grants.entry(object.clone()).or_default();
                for (action, scope) in actions {
                    let current = entry.entry(action.clone()).or_insert(*scope);
                    if *scope > *current {
                        *current = *scope;
                    }
                }
            }
            rules = Some(match rules {
                None => r.clone(),
                Some(existing) => intersect_rules(&existing, r, g),
            });
        }
        (grants, rules.unwrap_or_default())
    }

    pub fn scope(&self, object: &str, action: &str) -> Option<Scope> {
        let lookup = |o: &str, a: &str| self.grants.get(o).and_then(|m| m.get(a)).copied();
        lookup(object, action)
            .or_else(|| lookup(object, "*"))
            .or_else(|| lookup("*", action))
            .or_else(|| lookup("*", "*"))
    }

    pub fn field_rule(&self, object: &str, field: &str) -> Option<FieldRule> {
        self.field_rules.get(object).and_then(|m| m.get(field)).copied()
    }

    /// Whether any field of the object is hidden or read-only for these roles.
    pub fn restricts_fields(&self, object: &str) -> bool {
        self.field_rules.get(object).is_some_and(|m| !m.is_empty())
    }
}

/// Keeps a rule only where both role sets restrict the field; the stricter of two rules wins
/// when both restrict it. A role that grants the object but sets no rule lifts restrictions.
fn intersect_rules(a: &FieldRules, b: &FieldRules, b_grants: &Grants) -> FieldRules {
    let mut out = FieldRules::new();
    for (object, fields) in a {
        let b_fields = b.get(object);
        let b_grants_object = b_grants.contains_key(object) || b_grants.contains_key("*");
        for (field, rule) in fields {
            let keep = match b_fields.and_then(|f| f.get(field)) {
                Some(other) => Some(if *rule == FieldRule::Hidden && *other == FieldRule::Hidden {
                    FieldRule::Hidden
                } else {
                    FieldRule::ReadOnly
                }),
                None if b_grants_object => None,
                None => Some(*rule),
            };
            if let Some(rule) = keep {
                out.entry(object.clone()).or_default().insert(field.clone(), rule);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(pairs: &[(&str, &str, Scope)]) -> Grants {
        let mut g = Grants::new();
        for (o, a, s) in pairs {
            g.entry((*o).into()).or_default().insert((*a).into(), *s);
        }
        g
    }

    #[test]
    fn wildcards_grant_any_object_or_action() {
        let access = Access {
            grants: grants(&[("*", "*", Scope::All), ("customer", "read", Scope::Own)]),
            ..Access::default()
        };
        assert_eq!(access.scope("customer", "read"), Some(Scope::Own));
        assert_eq!(access.scope("contact", "delete"), Some(Scope::All));
        let none = Access::default();
        assert_eq!(none.scope("customer", "read"), None);
    }

    #[test]
    fn the_widest_scope_of_several_roles_wins() {
        let a = grants(&[("customer", "read", Scope::Own)]);
        let b = grants(&[("customer", "read", Scope::Department), ("contact", "read", Scope::All)]);
        let empty = FieldRules::new();
        let (g, _) = Access::merge_roles([(&a, &empty), (&b, &empty)]);
        assert_eq!(g["customer"]["read"], Scope::Department);
        assert_eq!(g["contact"]["read"], Scope::All);
    }

    #[test]
    fn a_field_stays_hidden_only_if_every_role_hides_it() {
        let g = grants(&[("customer", "read", Scope::All)]);
        let mut hides = FieldRules::new();
        hides
            .entry("customer".into())
            .or_default()
            .insert("credit_code".into(), FieldRule::Hidden);
        let (_, both) = Access::merge_roles([(&g, &hides), (&g, &hides)]);
        assert_eq!(both["customer"]["credit_code"], FieldRule::Hidden);
        let (_, lifted) = Access::merge_roles([(&g, &hides), (&g, &FieldRules::new())]);
        assert!(lifted.get("customer").is_none_or(|f| f.get("credit_code").is_none()));
    }

    #[test]
    fn an_object_is_restricted_only_where_a_field_rule_remains() {
        let mut rules = FieldRules::new();
        rules
            .entry("customer".into())
            .or_default()
            .insert("credit_code".into(), FieldRule::ReadOnly);
        rules.entry("contact".into()).or_default();
        let access = Access {
            field_rules: rules,
            ..Access::default()
        };
        assert!(access.restricts_fields("customer"));
        assert!(
            !access.restricts_fields("contact"),
            "an empty rule set restricts nothing"
        );
        assert!(!access.restricts_fields("lead"));
        assert!(!Access::default().restricts_fields("customer"));
    }

    #[test]
    fn scopes_serialise_with_their_api_names() {
        assert_eq!(serde_json::to_string(&Scope::Own).ok().as_deref(), Some("\"self\""));
        assert_eq!(
            serde_json::to_string(&Scope::DepartmentTree).ok().as_deref(),
            Some("\"department_tree\"")
        );
    }
}
