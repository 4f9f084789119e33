//! The value of `rewrite-target`.

use vestibule_routing::{RewritePart, RewriteTarget};

use super::values::Invalid;

/// A replacement path of the characters ingress-nginx accepts (letters, digits, `-._~/:`),
/// with `$1` to `$9` standing for the capture groups of the matched path.
pub(crate) fn target(text: &str) -> Result<RewriteTarget, Invalid> {
    let text = text.trim();
    if text.is_empty() {
        return Err("expected a path such as /$2".to_owned());
    }
    if text.contains("://") {
        return Err(
            "a rewrite to another URL is a redirect; use permanent-redirect or temporal-redirect"
                .to_owned(),
        );
    }
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '$' => {
                let group = chars
                    .next()
                    .and_then(|digit| digit.to_digit(10))
                    .filter(|group| (1..=9).contains(group))
                    .ok_or("only the capture groups $1 to $9 can be used")?;
                if !literal.is_empty() {
                    parts.push(RewritePart::Text(std::mem::take(&mut literal)));
                }
                parts.push(RewritePart::Group(group as u8));
            }
            c if c.is_ascii_alphanumeric() || "-._~/:".contains(c) => literal.push(c),
            other => return Err(format!("the path contains {other:?}")),
        }
    }
    if !literal.is_empty() {
        parts.push(RewritePart::Text(literal));
    }
    Ok(RewriteTarget(parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_text_are_separated() {
        let parsed = target(" /api/$1/items$2 ").expect("valid");
        assert_eq!(
            parsed.0,
            vec![
                RewritePart::Text("/api/".into()),
                RewritePart::Group(1),
                RewritePart::Text("/items".into()),
                RewritePart::Group(2),
            ]
        );
        assert_eq!(parsed.to_string(), "/api/$1/items$2");
        assert_eq!(target("/$10").expect("valid").to_string(), "/$10");
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "/$0",
            "/$host",
            "/$",
            "/a b",
            "/a?b=1",
            "/a;return 200",
            "https://example.com/$1",
        ] {
            assert!(target(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
