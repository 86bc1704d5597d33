//! Search terms for Chinese-first quick search. A record's searchable text becomes index terms:
//!
//! - `g:` Chinese bigrams (`中平能源` → `中平`, `平能`, `能源`), so any Chinese substring of two or
//!   more characters is found by intersecting its bigrams;
//! - `p:` full pinyin and `i:` pinyin initials, from the start and from the first few
//!   characters on (`zhongpingnengyuan`, `pingnengyuan`, …; `zpny`, `pny`, …), matched by prefix,
//!   so `zhongping`, `nengyuan` and `zpny` all find 中平能源 — for names only ([`TermKind`]):
//!   nobody types the initials of a follow-up's subject, and at enterprise size those terms
//!   were a third of the index (decision 0016);
//! - `t:` Latin and digit tokens (numbers like `cm000001`, phones, emails and their parts, the
//!   last four digits of a phone), matched by prefix.
//!
//! Queries are planned into index lookups here; the store runs them on either backend.

use pinyin::ToPinyin;

/// How many starting positions get pinyin suffix terms (brands sit near the start of a name).
const PINYIN_STARTS: usize = 6;
/// Bigrams so common in company names that they narrow nothing; dropped from a query when other
/// bigrams remain.
const COMMON_BIGRAMS: &[&str] = &[
    "有限", "限公", "公司", "股份", "份有", "集团", "责任", "任公", "科技", "技有",
];

fn is_cjk(c: char) -> bool {
    matches!(c, '\u{4e00}'..='\u{9fff}' | '\u{3400}'..='\u{4dbf}')
}

/// The pinyin of one character (lower-case, no tones), or the character itself if it has none.
fn syllable(c: char) -> Option<String> {
    if is_cjk(c) {
        c.to_pinyin().map(|p| p.plain().to_owned())
    } else if c.is_ascii_alphanumeric() {
        Some(c.to_ascii_lowercase().to_string())
    } else {
        None
    }
}

/// How a field's value is indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TermKind {
    /// A name (of a company, a person, a department): bigrams, words and pinyin.
    Name,
    /// Free text (a follow-up's subject) or a child's value under its parent: bigrams and words.
    Words,
    /// A phone number: words, the whole number and its last four digits.
    Phone,
}

/// Index terms of one field value.
pub fn terms(text: &str, kind: TermKind) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    // Chinese bigrams within runs of Chinese characters.
    for w in chars.windows(2) {
        if is_cjk(w[0]) && is_cjk(w[1]) {
            out.push(format!("g:{}{}", w[0], w[1]));
        }
    }
    // Pinyin suffixes from the first few Chinese characters on.
    if kind == TermKind::Name && chars.iter().any(|c| is_cjk(*c)) {
        let syllables: Vec<Option<String>> = chars.iter().map(|c| syllable(*c)).collect();
        let starts = chars
            .iter()
            .enumerate()
            .filter(|(_, c)| is_cjk(**c))
            .map(|(i, _)| i)
            .take(PINYIN_STARTS);
        for start in starts {
            let rest = &syllables[start..];
            let full: String = rest.iter().flatten().map(String::as_str).collect();
            let initials: String = rest.iter().flatten().filter_map(|s| s.chars().next()).collect();
            if full.len() >= 2 {
                out.push(format!("p:{}", truncate(&full, 60)));
            }
            if initials.len() >= 2 {
                out.push(format!("i:{}", truncate(&initials, 30)));
            }
        }
    }
    // Latin and digit tokens, and the whole value when it is a code, phone or email.
    let lower = text.trim().to_lowercase();
    if !lower.is_empty() && lower.is_ascii() && !lower.contains(' ') && lower.len() <= 100 {
        out.push(format!("t:{lower}"));
    }
    // Words next to Chinese text may be single letters or digits (分公司B, 3号楼): keep them.
    let min_len = if chars.iter().any(|c| is_cjk(*c)) { 1 } else { 2 };
    for token in lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| t.len() >= min_len && t.len() <= 60)
    {
        out.push(format!("t:{token}"));
    }
    // An email is also found by its domain (`zpny.com` finds `info@zpny.com.cn`).
    if let Some((_, domain)) = lower.split_once('@')
        && domain.len() >= 2
        && domain.is_ascii()
    {
        out.push(format!("t:{domain}"));
    }
    if kind == TermKind::Phone {
        let digits: String = text.chars().filter(char::is_ascii_digit).collect();
        if digits.len() >= 7 {
            out.push(format!("t:{}", &digits[digits.len() - 4..]));
            out.push(format!("t:{digits}"));
        }
    }
    out.sort();
    out.dedup();
    out
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// An index lookup for a quick-search query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Records having every one of these exact terms (Chinese bigrams).
    AllOf(Vec<String>),
    /// Records having a term starting with any of these prefixes.
    AnyPrefix(Vec<String>),
    /// The query has nothing searchable (punctuation only).
    Nothing,
}

/// Plans the lookup for a query.
pub fn plan(query: &str) -> Plan {
    let q = query.trim().to_lowercase();
    let cjk: Vec<char> = q.chars().filter(|c| is_cjk(*c)).collect();
    if cjk.len() >= 2 {
        let mut grams: Vec<String> = q
            .chars()
            .collect::<Vec<_>>()
            .windows(2)
            .filter(|w| is_cjk(w[0]) && is_cjk(w[1]))
            .map(|w| format!("g:{}{}", w[0], w[1]))
            .collect();
        grams.sort();
        grams.dedup();
        // Latin and digit words of a mixed query must match too (`客户A-own` → `own`).
        let words: Vec<String> = q
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|t| !t.is_empty() && t.len() <= 60)
            .map(|t| format!("t:{t}"))
            .collect();
        grams.extend(words.iter().cloned());
        grams.sort();
        grams.dedup();
        let specific: Vec<String> = grams
            .iter()
            .filter(|g| !COMMON_BIGRAMS.contains(&&g[2..]))
            .cloned()
            .collect();
        if !specific.is_empty() {
            return Plan::AllOf(specific);
        }
        if !grams.is_empty() {
            return Plan::AllOf(grams);
        }
    }
    if cjk.len() == 1 {
        return Plan::AnyPrefix(vec![format!("g:{}", cjk[0])]);
    }
    let compact: String = q
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "@.-_".contains(*c))
        .collect();
    if compact.is_empty() {
        return Plan::Nothing;
    }
    let letters: String = compact.chars().filter(char::is_ascii_alphanumeric).collect();
    let mut prefixes = vec![format!("t:{compact}")];
    if !letters.is_empty() && letters.chars().all(|c| c.is_ascii_lowercase()) {
        prefixes.push(format!("p:{letters}"));
        prefixes.push(format!("i:{letters}"));
    }
    Plan::AnyPrefix(prefixes)
}

/// The smallest string greater than every string starting with `prefix` (for range scans that
/// use a B-tree index on both backends).
pub fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_company_name_gives_bigrams_pinyin_and_initials() {
        let t = terms("中平能源", TermKind::Name);
        for expected in [
            "g:中平",
            "g:平能",
            "g:能源",
            "p:zhongpingnengyuan",
            "p:nengyuan",
            "i:zpny",
            "i:ny",
        ] {
            assert!(t.contains(&expected.to_owned()), "{expected} missing from {t:?}");
        }
    }

    #[test]
    fn free_text_gives_bigrams_and_words_but_no_pinyin() {
        let t = terms("电话回访A3", TermKind::Words);
        for expected in ["g:电话", "g:话回", "g:回访", "t:a3"] {
            assert!(t.contains(&expected.to_owned()), "{expected} missing from {t:?}");
        }
        assert!(
            !t.iter().any(|t| t.starts_with("p:") || t.starts_with("i:")),
            "no pinyin for free text: {t:?}"
        );
        let name = terms("电话回访A3", TermKind::Name);
        assert!(name.contains(&"i:dhhfa3".to_owned()), "{name:?}");
    }

    #[test]
    fn queries_plan_into_bigrams_or_prefixes() {
        assert_eq!(plan("中平"), Plan::AllOf(vec!["g:中平".into()]));
        assert_eq!(plan("平能源"), Plan::AllOf(vec!["g:平能".into(), "g:能源".into()]));
        assert_eq!(
            plan("中平能源有限公司"),
            Plan::AllOf(vec!["g:中平".into(), "g:平能".into(), "g:源有".into(), "g:能源".into()])
        );
        assert_eq!(
            plan("ZPNY"),
            Plan::AnyPrefix(vec!["t:zpny".into(), "p:zpny".into(), "i:zpny".into()])
        );
        assert_eq!(plan("1381234"), Plan::AnyPrefix(vec!["t:1381234".into()]));
        assert_eq!(
            plan("客户A-own"),
            Plan::AllOf(vec!["g:客户".into(), "t:a".into(), "t:own".into()])
        );
        assert_eq!(
            plan("' or 1=1 --"),
            Plan::AnyPrefix(vec!["t:or11--".into()]),
            "SQL-ish text is just text"
        );
        assert_eq!(plan("%%"), Plan::Nothing);
    }

    #[test]
    fn phones_and_emails_become_prefix_tokens() {
        let t = terms("13812345678", TermKind::Phone);
        assert!(t.contains(&"t:13812345678".to_owned()) && t.contains(&"t:5678".to_owned()));
        let e = terms("Info@ZPNY.com.cn", TermKind::Words);
        assert!(e.contains(&"t:info@zpny.com.cn".to_owned()) && e.contains(&"t:zpny".to_owned()));
    }
}
