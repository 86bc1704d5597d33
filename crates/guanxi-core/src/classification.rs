//! Customer value classification (客户分类, seed 000 §3.1.5 C-19/C-20 and BR-20; seed 001 M1
//! §2.4.3 客户价值统计): configurable RFM-style rules that turn a customer's total amount
//! (monetary), number of recent follow-ups (frequency) and days since the last follow-up
//! (recency) into points, and the points into a value tier (A/B/C from the
//! `customer_value_tier` dictionary). Pure functions: the job that applies them lives in the
//! server, the rules are stored as a setting.

use serde::{Deserialize, Serialize};

use crate::error::{FieldError, FieldErrors};

/// Points for reaching an amount (in yuan) or a number of follow-ups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Band {
    pub min: i64,
    pub points: i64,
}

/// Points for a last follow-up at most `max_days` ago.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecencyBand {
    pub max_days: i64,
    pub points: i64,
}

/// The tier given from `min_points` total points up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierRule {
    pub tier: String,
    pub min_points: i64,
}

/// The whole rule set, as stored in the `customer.classification_rules` setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassificationRules {
    /// Follow-ups of the last `window_days` days count for frequency.
    pub window_days: i64,
    /// Monetary: the band with the highest `min` (yuan) that the total amount reaches.
    pub amount: Vec<Band>,
    /// Frequency: the band with the highest `min` that the recent follow-ups reach.
    pub frequency: Vec<Band>,
    /// Recency: the band with the lowest `max_days` that still covers the last follow-up.
    pub recency: Vec<RecencyBand>,
    /// The tier with the highest `min_points` reached; one tier must start at 0.
    pub tiers: Vec<TierRule>,
}

impl Default for ClassificationRules {
    /// High / medium / low value (高/中/低价值, seed 000 C-19) from a 9-point scale.
    fn default() -> Self {
        let band = |min, points| Band { min, points };
        let recent = |max_days, points| RecencyBand { max_days, points };
        let tier = |t: &str, min_points| TierRule {
            tier: t.into(),
            min_points,
        };
        ClassificationRules {
            window_days: 90,
            amount: vec![band(1_000_000, 3), band(100_000, 2), band(1, 1)],
            frequency: vec![band(6, 3), band(3, 2), band(1, 1)],
            recency: vec![recent(30, 3), recent(90, 2), recent(180, 1)],
            tiers: vec![tier("A", 7), tier("B", 4), tier("C", 0)],
        }
    }
}

/// What the rules look at for one customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CustomerFacts {
    /// Total amount in minor units (分).
    pub amount_minor: i64,
    /// Follow-ups within the window.
    pub recent_follow_ups: i64,
    /// Whole days since the last follow-up; `None` when there never was one.
    pub days_since_last: Option<i64>,
}

const MAX_BANDS: usize = 20;
const MAX_POINTS: i64 = 100;

fn error(code: &'static str, zh: impl Into<String>, en: impl Into<String>) -> FieldError {
    FieldError::new(code, zh, en)
}

impl ClassificationRules {
    /// Checks the rules; `tiers` lists the values the tier dictionary allows. Every problem is
    /// reported under the path of the bad entry (`amount.1.points`, `tiers`).
    pub fn validate(&self, allowed_tiers: &[String]) -> Result<(), FieldErrors> {
        let mut errors = FieldErrors::default();
        if !(1..=3650).contains(&self.window_days) {
            errors.add(
                "window_days",
                error(
                    "out_of_range",
                    "统计天数应在1到3650之间",
                    "window_days must be 1 to 3650",
                ),
            );
        }
        let points_ok = |p: i64| (0..=MAX_POINTS).contains(&p);
        for (name, bands) in [("amount", &self.amount), ("frequency", &self.frequency)] {
            check_count(&mut errors, name, bands.len(), false);
            let mut seen = Vec::new();
            for (i, b) in bands.iter().enumerate() {
                if b.min < 0 {
                    errors.add(
                        &format!("{name}.{i}.min"),
                        error("out_of_range", "不能为负数", "must not be negative"),
                    );
                }
                if !points_ok(b.points) {
                    errors.add(&format!("{name}.{i}.points"), points_error());
                }
                if seen.contains(&b.min) {
                    errors.add(&format!("{name}.{i}.min"), duplicate_error());
                }
                seen.push(b.min);
            }
        }
        check_count(&mut errors, "recency", self.recency.len(), false);
        let mut seen = Vec::new();
        for (i, b) in self.recency.iter().enumerate() {
            if !(0..=36_500).contains(&b.max_days) {
                errors.add(
                    &format!("recency.{i}.max_days"),
                    error("out_of_range", "天数应在0到36500之间", "max_days must be 0 to 36500"),
                );
            }
            if !points_ok(b.points) {
                errors.add(&format!("recency.{i}.points"), points_error());
            }
            if seen.contains(&b.max_days) {
                errors.add(&format!("recency.{i}.max_days"), duplicate_error());
            }
            seen.push(b.max_days);
        }
        check_count(&mut errors, "tiers", self.tiers.len(), true);
        let mut tiers_seen: Vec<&str> = Vec::new();
        let mut mins_seen = Vec::new();
        for (i, t) in self.tiers.iter().enumerate() {
            if !allowed_tiers.iter().any(|a| a == &t.tier) {
                errors.add(
                    &format!("tiers.{i}.tier"),
                    error(
                        "invalid_option",
                        format!("价值等级“{}”不在数据字典中", t.tier),
                        format!("'{}' is not a value tier of the dictionary", t.tier),
                    ),
                );
            }
            if tiers_seen.contains(&t.tier.as_str()) {
                errors.add(&format!("tiers.{i}.tier"), duplicate_error());
            }
            tiers_seen.push(&t.tier);
            if !(0..=3 * MAX_POINTS).contains(&t.min_points) {
                errors.add(
                    &format!("tiers.{i}.min_points"),
                    error("out_of_range", "分数应在0到300之间", "min_points must be 0 to 300"),
                );
            }
            if mins_seen.contains(&t.min_points) {
                errors.add(&format!("tiers.{i}.min_points"), duplicate_error());
            }
            mins_seen.push(t.min_points);
        }
        if !self.tiers.is_empty() && !self.tiers.iter().any(|t| t.min_points == 0) {
            errors.add(
                "tiers",
                error(
                    "no_base_tier",
                    "必须有一个从0分开始的等级，每个客户才都有等级",
                    "one tier must start at 0 points so that every customer gets a tier",
                ),
            );
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    /// The points of one customer.
    pub fn points(&self, facts: &CustomerFacts) -> i64 {
        let yuan = facts.amount_minor.div_euclid(100);
        let reached = |bands: &[Band], x: i64| {
            bands
                .iter()
                .filter(|b| x >= b.min)
                .max_by_key(|b| b.min)
                .map_or(0, |b| b.points)
        };
        let recency = facts.days_since_last.map_or(0, |days| {
            self.recency
                .iter()
                .filter(|b| days <= b.max_days)
                .min_by_key(|b| b.max_days)
                .map_or(0, |b| b.points)
        });
        reached(&self.amount, yuan) + reached(&self.frequency, facts.recent_follow_ups) + recency
    }

    /// The tier of one customer (`None` only for rules without a 0-point tier).
    pub fn tier(&self, facts: &CustomerFacts) -> Option<&str> {
        let points = self.points(facts);
        self.tiers
            .iter()
            .filter(|t| points >= t.min_points)
            .max_by_key(|t| t.min_points)
            .map(|t| t.tier.as_str())
    }
}

fn check_count(errors: &mut FieldErrors, name: &str, n: usize, required: bool) {
    if n > MAX_BANDS {
        errors.add(
            name,
            error(
                "too_many",
                format!("最多{MAX_BANDS}档"),
                format!("at most {MAX_BANDS} entries"),
            ),
        );
    }
    if required && n == 0 {
        errors.add(
            name,
            error("required", "至少需要一个等级", "at least one tier is needed"),
        );
    }
}

fn points_error() -> FieldError {
    error("out_of_range", "分数应在0到100之间", "points must be 0 to 100")
}

fn duplicate_error() -> FieldError {
    error("duplicate", "与前面的档位重复", "repeats an earlier entry")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiers() -> Vec<String> {
        ["A", "B", "C"].map(String::from).to_vec()
    }

    #[test]
    fn the_default_rules_are_valid_and_score_rfm_points() {
        let rules = ClassificationRules::default();
        assert!(rules.validate(&tiers()).is_ok());
        let big = CustomerFacts {
            amount_minor: 2_000_000 * 100,
            recent_follow_ups: 8,
            days_since_last: Some(3),
        };
        assert_eq!(rules.points(&big), 9);
        assert_eq!(rules.tier(&big), Some("A"));
        let middling = CustomerFacts {
            amount_minor: 200_000 * 100,
            recent_follow_ups: 1,
            days_since_last: Some(60),
        };
        assert_eq!(rules.points(&middling), 2 + 1 + 2);
        assert_eq!(rules.tier(&middling), Some("B"));
        assert_eq!(rules.tier(&CustomerFacts::default()), Some("C"));
        let long_ago = CustomerFacts {
            days_since_last: Some(400),
            ..CustomerFacts::default()
        };
        assert_eq!(rules.points(&long_ago), 0);
    }

    #[test]
    fn band_order_does_not_matter() {
        let mut rules = ClassificationRules::default();
        rules.amount.reverse();
        rules.recency.reverse();
        rules.tiers.reverse();
        let facts = CustomerFacts {
            amount_minor: 150_000 * 100,
            recent_follow_ups: 0,
            days_since_last: Some(20),
        };
        assert_eq!(rules.points(&facts), 2 + 3);
        assert_eq!(rules.tier(&facts), Some("B"));
    }

    #[test]
    fn bad_rules_are_reported_per_entry() {
        let mut rules = ClassificationRules {
            window_days: 0,
            ..ClassificationRules::default()
        };
        rules.amount[1].points = 101;
        rules.frequency[2].min = 6;
        rules.tiers = vec![
            TierRule {
                tier: "Z".into(),
                min_points: 5,
            },
            TierRule {
                tier: "A".into(),
                min_points: 5,
            },
        ];
        let errors = rules.validate(&tiers()).err().unwrap_or_default();
        let codes = errors.codes();
        assert_eq!(codes["window_days"], ["out_of_range"]);
        assert_eq!(codes["amount.1.points"], ["out_of_range"]);
        assert_eq!(codes["frequency.2.min"], ["duplicate"]);
        assert_eq!(codes["tiers.0.tier"], ["invalid_option"]);
        assert_eq!(codes["tiers.1.min_points"], ["duplicate"]);
        assert_eq!(codes["tiers"], ["no_base_tier"]);
        let empty = ClassificationRules {
            tiers: vec![],
            ..ClassificationRules::default()
        };
        assert_eq!(
            empty.validate(&tiers()).err().unwrap_or_default().codes()["tiers"],
            ["required"]
        );
    }
}
