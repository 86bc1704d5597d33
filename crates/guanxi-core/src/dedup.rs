//! Duplicate keys of customers (issue 5 §5; seed 004 FR-CUST-01 §3.1.3 "避免重复录入已存在的客户信息"):
//! the normalised forms of a name, phone, email and unified social credit code under which two
//! customers count as "the same". The store keeps these keys in an indexed table in step with
//! every write; creation, import and the duplicates API look candidates up by them.
//!
//! Rules, in the order they apply:
//!
//! - **name**: full-width → half-width (`ＡＢＣ１２３` → `abc123`, `（` → `(`), other brackets
//!   (`【】〔〕［］[]`) → `()`, case-folded, whitespace trimmed and collapsed (and removed next to
//!   Chinese characters and brackets, where it carries no meaning), then one common legal suffix
//!   dropped (`股份有限公司`, `有限责任公司`, `有限公司`, `公司`, `co., ltd.`, `ltd`, `inc.`, …) — so
//!   `北京中平能源有限公司`, ` 北京中平能源公司 ` and `北京中平能源股份有限公司` are one key;
//! - **phone**: digits only, a `+86`/`0086` country prefix dropped (`+86 138-1234-5678` →
//!   `13812345678`, `010-1234 5678` → `01012345678`); fewer than 7 digits is no key;
//! - **email**: trimmed and lower-cased;
//! - **credit code**: half-width, spaces removed, upper-cased (it is also a unique field).

use std::fmt;

/// Which value two customers share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyKind {
    CreditCode,
    Name,
    Phone,
    Email,
}

impl KeyKind {
    /// In the order duplicates are matched: the most reliable key first.
    pub const ALL: [KeyKind; 4] = [KeyKind::CreditCode, KeyKind::Name, KeyKind::Phone, KeyKind::Email];

    /// The stored name of the kind, also the customer field it comes from.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::CreditCode => "credit_code",
            KeyKind::Name => "name",
            KeyKind::Phone => "phone",
            KeyKind::Email => "email",
        }
    }

    pub fn parse(s: &str) -> Option<KeyKind> {
        KeyKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The customer field the key is made from.
    pub fn field(self) -> &'static str {
        self.as_str()
    }

    /// Normalises a raw value into this kind's key; `None` when nothing usable remains.
    pub fn normalize(self, raw: &str) -> Option<String> {
        match self {
            KeyKind::CreditCode => normalize_credit_code(raw),
            KeyKind::Name => normalize_name(raw),
            KeyKind::Phone => normalize_phone_key(raw),
            KeyKind::Email => normalize_email(raw),
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Legal-form suffixes dropped from the end of a name, longest first so `股份有限公司` is not
/// left as `股份` by `有限公司`. Latin forms are matched after case-folding.
const LEGAL_SUFFIXES: &[&str] = &[
    "股份有限公司",
    "有限责任公司",
    "有限公司",
    "股份公司",
    "公司",
    "company limited",
    "co., ltd.",
    "co.,ltd.",
    "co., ltd",
    "co.,ltd",
    "co ltd",
    "co. ltd.",
    "co. ltd",
    "limited",
    "ltd.",
    "ltd",
    "inc.",
    "inc",
    "corp.",
    "corp",
    "llc",
];

fn is_cjk(c: char) -> bool {
    matches!(c, '\u{4e00}'..='\u{9fff}' | '\u{3400}'..='\u{4dbf}' | '\u{3000}'..='\u{303f}')
}

/// Full-width ASCII forms (U+FF01–U+FF5E) and the ideographic space become their half-width
/// counterparts.
pub fn to_half_width(c: char) -> char {
    match c {
        '\u{3000}' => ' ',
        '\u{ff01}'..='\u{ff5e}' => char::from_u32(u32::from(c) - 0xfee0).unwrap_or(c),
        _ => c,
    }
}

fn unify_bracket(c: char) -> char {
    match c {
        '【' | '〔' | '[' | '{' | '〖' => '(',
        '】' | '〕' | ']' | '}' | '〗' => ')',
        other => other,
    }
}

/// Half-width, brackets unified, lower-cased, whitespace collapsed; spaces next to Chinese
/// characters or brackets dropped.
fn canonical_text(raw: &str) -> String {
    let folded: String = raw
        .chars()
        .map(|c| unify_bracket(to_half_width(c)))
        .flat_map(char::to_lowercase)
        .collect();
    let words: Vec<&str> = folded.split_whitespace().collect();
    let mut out = String::with_capacity(folded.len());
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            let before = out.chars().last();
            let after = w.chars().next();
            let glue = |c: Option<char>| c.is_some_and(|c| is_cjk(c) || matches!(c, '(' | ')'));
            if !glue(before) && !glue(after) {
                out.push(' ');
            }
        }
        out.push_str(w);
    }
    out
}

/// The name key: see the module documentation.
pub fn normalize_name(raw: &str) -> Option<String> {
    let text = canonical_text(raw);
    if text.is_empty() {
        return None;
    }
    for suffix in LEGAL_SUFFIXES {
        if let Some(stem) = text.strip_suffix(suffix) {
            // Latin suffixes must be whole words ("Hyperinc" keeps its "inc").
            let latin = suffix.is_ascii();
            let stem_trimmed = stem.trim_end_matches([' ', ',', '.']);
            if latin && !(stem.ends_with([' ', ',', '.', ')']) || stem.chars().last().is_some_and(is_cjk)) {
                continue;
            }
            if stem_trimmed.is_empty() {
                // A name that is only a legal form keeps it: "有限公司" is its own key.
                return Some(text);
            }
            return Some(stem_trimmed.to_owned());
        }
    }
    Some(text)
}

/// The phone key: digits only, without a `+86`/`0086` country prefix.
pub fn normalize_phone_key(raw: &str) -> Option<String> {
    let trimmed: String = raw.trim().chars().map(to_half_width).collect();
    let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
    let national = if let Some(rest) = digits.strip_prefix("0086") {
        rest.to_owned()
    } else if trimmed.starts_with("+86") {
        digits.get(2..).unwrap_or_default().to_owned()
    } else if digits.len() == 13 && digits.starts_with("861") {
        // "86 138…" typed without the plus.
        digits.get(2..).unwrap_or_default().to_owned()
    } else {
        digits
    };
    (national.len() >= 7).then_some(national)
}

/// The email key: trimmed and lower-cased.
pub fn normalize_email(raw: &str) -> Option<String> {
    let e: String = raw.trim().chars().map(to_half_width).collect::<String>().to_lowercase();
    (e.contains('@') && e.len() >= 3).then_some(e)
}

/// The credit-code key: half-width, without spaces, upper-cased.
pub fn normalize_credit_code(raw: &str) -> Option<String> {
    let c: String = raw
        .chars()
        .map(to_half_width)
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect::<String>()
        .to_uppercase();
    (!c.is_empty()).then_some(c)
}

/// The keys of a customer given its field values (any of which may be missing).
pub fn keys_of<'a>(value_of: impl Fn(&str) -> Option<&'a str>) -> Vec<(KeyKind, String)> {
    KeyKind::ALL
        .into_iter()
        .filter_map(|kind| {
            value_of(kind.field())
                .and_then(|v| kind.normalize(v))
                .map(|k| (kind, k))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> String {
        normalize_name(s).unwrap_or_default()
    }

    #[test]
    fn names_are_trimmed_and_spaces_collapsed() {
        assert_eq!(name("  北京中平能源  "), "北京中平能源");
        assert_eq!(name("北京 中平  能源"), "北京中平能源");
        assert_eq!(name("Acme   Trading"), "acme trading");
        assert_eq!(name("\u{3000}北京\u{3000}中平"), "北京中平");
    }

    #[test]
    fn full_width_letters_digits_and_brackets_become_half_width() {
        assert_eq!(name("ＡＢＣ科技１２３"), "abc科技123");
        assert_eq!(name("中平能源（北京）"), "中平能源(北京)");
        assert_eq!(name("中平能源【北京】"), "中平能源(北京)");
        assert_eq!(name("中平能源 ( 北京 )"), "中平能源(北京)");
    }

    #[test]
    fn case_is_folded() {
        assert_eq!(name("IBM China"), name("ibm CHINA"));
        assert_eq!(name("ＩＢＭ"), "ibm");
    }

    #[test]
    fn common_legal_suffixes_are_dropped() {
        let base = "北京中平能源";
        for n in [
            "北京中平能源有限公司",
            "北京中平能源有限责任公司",
            "北京中平能源股份有限公司",
            "北京中平能源公司",
            "北京中平能源",
        ] {
            assert_eq!(name(n), base, "{n}");
        }
        assert_eq!(name("Acme Trading Co., Ltd."), "acme trading");
        assert_eq!(name("Acme Trading Ltd"), "acme trading");
        assert_eq!(name("Acme Inc."), "acme");
        assert_eq!(name("ACME (Shanghai) Co., Ltd."), "acme(shanghai)");
        assert_eq!(name("Hyperinc"), "hyperinc", "a suffix must be a whole word");
        assert_eq!(
            name("有限公司"),
            "有限公司",
            "a name that is only a legal form keeps it"
        );
        // Only the legal form goes: a group is another company than its subsidiary.
        assert_eq!(name("中平能源集团有限公司"), "中平能源集团");
        assert_ne!(name("中平能源科技有限公司"), name("中平能源有限公司"));
    }

    #[test]
    fn an_empty_name_has_no_key() {
        assert_eq!(normalize_name("   "), None);
    }

    #[test]
    fn phones_keep_digits_only_without_the_country_prefix() {
        let key = |s: &str| normalize_phone_key(s);
        assert_eq!(key("13812345678").as_deref(), Some("13812345678"));
        assert_eq!(key("+86 138-1234-5678").as_deref(), Some("13812345678"));
        assert_eq!(key("0086 13812345678").as_deref(), Some("13812345678"));
        assert_eq!(key("8613812345678").as_deref(), Some("13812345678"));
        assert_eq!(key("+86-10-12345678").as_deref(), Some("1012345678"));
        assert_eq!(key("010-1234 5678").as_deref(), Some("01012345678"));
        assert_eq!(key("１３８１２３４５６７８").as_deref(), Some("13812345678"));
        assert_eq!(key("12345"), None, "too short to identify anyone");
        assert_eq!(key("无"), None);
    }

    #[test]
    fn emails_are_lower_cased() {
        assert_eq!(
            normalize_email("  Sales@ZhongPing.CN ").as_deref(),
            Some("sales@zhongping.cn")
        );
        assert_eq!(normalize_email("none"), None);
    }

    #[test]
    fn credit_codes_are_upper_cased_without_spaces() {
        assert_eq!(
            normalize_credit_code(" 91110000 60000000xa ").as_deref(),
            Some("9111000060000000XA")
        );
        assert_eq!(
            normalize_credit_code("９１１１０００００１２３４５６７８Ｘ").as_deref(),
            Some("91110000012345678X")
        );
        assert_eq!(normalize_credit_code(" "), None);
    }

    #[test]
    fn a_record_gives_one_key_per_filled_field_in_match_order() {
        let keys = keys_of(|f| match f {
            "name" => Some("北京中平能源有限公司"),
            "phone" => Some("+86 13812345678"),
            "email" => None,
            "credit_code" => Some("91110000600000000x"),
            _ => None,
        });
        assert_eq!(
            keys,
            vec![
                (KeyKind::CreditCode, "91110000600000000X".to_owned()),
                (KeyKind::Name, "北京中平能源".to_owned()),
                (KeyKind::Phone, "13812345678".to_owned()),
            ]
        );
        assert_eq!(KeyKind::parse("phone"), Some(KeyKind::Phone));
        assert_eq!(KeyKind::parse("fax"), None);
    }
}
