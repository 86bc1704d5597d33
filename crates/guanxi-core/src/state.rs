//! Declared state machines. A module declares the states of a record, the actions that move it
//! between them and who may trigger each action; the engine refuses anything else and writes a
//! history row (operator, time, remark) for every transition.

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::i18n::Label;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateDef {
    pub key: String,
    pub label: Label,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// The action name used in the URL, e.g. `approve`.
    pub action: String,
    pub label: Label,
    /// States the action may start from.
    pub from: Vec<String>,
    pub to: String,
    /// The permission an actor needs (e.g. `customer.activate`); `None` means any actor who may
    /// update the record.
    pub permission: Option<String>,
    /// Whether a remark must be given (e.g. a reason for cancelling).
    #[serde(default)]
    pub remark_required: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateMachine {
    /// The field that holds the state.
    pub field: String,
    pub initial: String,
    pub states: Vec<StateDef>,
    pub transitions: Vec<Transition>,
}

impl StateMachine {
    pub fn has_state(&self, key: &str) -> bool {
        self.states.iter().any(|s| s.key == key)
    }

    /// Finds the transition for `action` from `current`, or says why there is none.
    pub fn transition(&self, current: &str, action: &str) -> Result<&Transition, DomainError> {
        let Some(t) = self.transitions.iter().find(|t| t.action == action) else {
            return Err(DomainError::InvalidTransition(Label {
                zh: format!("未知操作：{action}"),
                en: format!("unknown action: {action}"),
            }));
        };
        if !t.from.iter().any(|f| f == current) {
            return Err(DomainError::InvalidTransition(Label {
                zh: format!("当前状态“{current}”不能执行“{}”", t.label.zh),
                en: format!("'{}' is not allowed from state '{current}'", t.label.en),
            }));
        }
        Ok(t)
    }

    /// Actions available from a state, for the UI's buttons.
    pub fn actions_from<'a>(&'a self, current: &'a str) -> impl Iterator<Item = &'a Transition> {
        self.transitions
            .iter()
            .filter(move |t| t.from.iter().any(|f| f == current))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine() -> StateMachine {
        StateMachine {
            field: "status".into(),
            initial: "new".into(),
            states: vec![
                StateDef {
                    key: "new".into(),
                    label: Label::new("新建", "New"),
                },
                StateDef {
                    key: "approved".into(),
                    label: Label::new("已审核", "Approved"),
                },
            ],
            transitions: vec![Transition {
                action: "approve".into(),
                label: Label::new("审核", "Approve"),
                from: vec!["new".into()],
                to: "approved".into(),
                permission: Some("order.approve".into()),
                remark_required: false,
            }],
        }
    }

    #[test]
    fn a_declared_transition_is_found_from_its_source_state() {
        let m = machine();
        assert_eq!(
            m.transition("new", "approve").map(|t| t.to.as_str()).ok(),
            Some("approved")
        );
        assert_eq!(m.actions_from("new").count(), 1);
        assert_eq!(m.actions_from("approved").count(), 0);
    }

    #[test]
    fn undeclared_moves_are_refused() {
        let m = machine();
        assert!(matches!(
            m.transition("approved", "approve"),
            Err(DomainError::InvalidTransition(_))
        ));
        assert!(matches!(
            m.transition("new", "ship"),
            Err(DomainError::InvalidTransition(_))
        ));
    }
}
