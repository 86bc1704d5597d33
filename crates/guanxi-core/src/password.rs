//! Username and password rules (seed 000 §2.2, BR-1 to BR-3): usernames are 3–20 characters of
//! `[A-Za-z0-9_]`, start with a letter or digit and are not reserved; passwords have at least 8
//! characters from at least 3 of the 4 classes, are not among the ~30,000 most common passwords
//! (shipped in `data/common-passwords.txt`) and do not contain the username.

use std::collections::HashSet;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use crate::error::FieldError;

static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../data/common-passwords.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
});

/// How many passwords the shipped list holds (for documentation and tests).
pub fn common_password_count() -> usize {
    COMMON.len()
}

/// Whether a password is in the common-password list (case-insensitive).
pub fn is_common(password: &str) -> bool {
    COMMON.contains(password.to_lowercase().as_str())
}

/// The password policy; every number is a system parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PasswordPolicy {
    pub min_length: usize,
    /// Of lower case, upper case, digits, other characters.
    pub min_classes: usize,
    /// How many previous passwords may not be reused.
    pub history: usize,
    /// Days until a password must be changed; 0 disables expiry.
    pub expiry_days: i64,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            min_length: 8,
            min_classes: 3,
            history: 5,
            expiry_days: 60,
        }
    }
}

const MAX_PASSWORD_CHARS: usize = 128;

/// Checks a new password; returns every problem so the form can show them together.
pub fn check_password(policy: &PasswordPolicy, password: &str, username: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let len = password.chars().count();
    if len < policy.min_length {
        errors.push(FieldError::new(
            "password_too_short",
            format!("密码至少需要{}个字符", policy.min_length),
            format!("the password needs at least {} characters", policy.min_length),
        ));
    }
    if len > MAX_PASSWORD_CHARS {
        errors.push(FieldError::new(
            "password_too_long",
            format!("密码最多{MAX_PASSWORD_CHARS}个字符"),
            format!("the password may have at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    let classes = [
        password.chars().any(|c| c.is_lowercase()),
        password.chars().any(|c| c.is_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_alphanumeric()),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if classes < policy.min_classes {
        errors.push(FieldError::new(
            "password_too_simple",
            format!(
                "密码需包含大写字母、小写字母、数字、特殊字符中的至少{}类",
                policy.min_classes
            ),
            format!(
                "the password needs at least {} of: upper case, lower case, digits, other characters",
                policy.min_classes
            ),
        ));
    }
    if is_common(password) {
        errors.push(FieldError::new(
            "password_common",
            "该密码过于常见，容易被猜中，请换一个",
            "this password is too common and easy to guess; choose another",
        ));
    }
    if !username.is_empty() && password.to_lowercase().contains(&username.to_lowercase()) {
        errors.push(FieldError::new(
            "password_contains_username",
            "密码不能包含用户名",
            "the password must not contain the username",
        ));
    }
    errors
}

/// Names nobody may register, compared case-insensitively (configurable).
pub const DEFAULT_RESERVED_USERNAMES: &[&str] = &[
    "admin",
    "administrator",
    "root",
    "system",
    "sys",
    "sysadmin",
    "superuser",
    "guest",
    "null",
    "support",
    "security",
    "webmaster",
    "postmaster",
    "guanxi",
    "api",
    "test",
];

/// Checks a username against BR-1.
pub fn check_username(username: &str, reserved: &[String]) -> Option<FieldError> {
    let valid_chars = username.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let len = username.chars().count();
    let first_ok = username.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !(3..=20).contains(&len) || !valid_chars || !first_ok {
        return Some(FieldError::new(
            "invalid_username",
            "用户名须为3–20位字母、数字或下划线，且以字母或数字开头",
            "the username must be 3–20 letters, digits or underscores, starting with a letter or digit",
        ));
    }
    if reserved.iter().any(|r| r.eq_ignore_ascii_case(username)) {
        return Some(FieldError::new(
            "reserved_username",
            "该用户名为系统保留，不能使用",
            "this username is reserved",
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(p: &str, user: &str) -> Vec<&'static str> {
        check_password(&PasswordPolicy::default(), p, user)
            .into_iter()
            .map(|e| e.code)
            .collect()
    }

    #[test]
    fn the_shipped_list_has_more_than_ten_thousand_passwords() {
        assert!(common_password_count() >= 10_000);
        assert!(is_common("password"));
        assert!(is_common("Admin@123"));
        assert!(is_common("WOAINI1314"));
    }

    #[test]
    fn passwords_need_length_classes_and_originality() {
        assert!(codes("Gx!7trq#Lm", "lilei").is_empty());
        assert_eq!(codes("Ab1!", "lilei"), ["password_too_short"]);
        assert_eq!(codes("abcdefghij", "lilei"), ["password_too_simple"]);
        assert!(codes("P@ssw0rd", "lilei").contains(&"password_common"));
        assert!(codes("Lilei#2026x", "lilei").contains(&"password_contains_username"));
        assert!(codes("密码很长但是只有中文", "lilei").contains(&"password_too_simple"));
    }

    #[test]
    fn usernames_follow_br_1() {
        let reserved: Vec<String> = DEFAULT_RESERVED_USERNAMES.iter().map(|s| (*s).to_owned()).collect();
        assert!(check_username("li_lei2026", &reserved).is_none());
        assert!(check_username("Admin", &reserved).is_some_and(|e| e.code == "reserved_username"));
        for bad in [
            "ab",
            "_lilei",
            "+lilei",
            "li lei",
            "李雷李雷",
            "a_very_long_username_21",
        ] {
            assert!(
                check_username(bad, &reserved).is_some_and(|e| e.code == "invalid_username"),
                "{bad}"
            );
        }
    }
}
