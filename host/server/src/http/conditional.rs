//! Conditional requests on single keys, as RFC 9110 §13 defines them for
//! `If-Match` and `If-None-Match`.
//!
//! - A field is `*` or a comma-separated list of entity-tags (`"17"`,
//!   `W/"17"`), possibly over several header lines. Anything else is `400`
//!   naming the header and the accepted form.
//! - `If-Match` uses the strong comparison: a weak tag never matches, and a
//!   well-formed tag that names no version (`"nope"`) simply does not match
//!   (`412`, not `400`). `If-Match: *` holds when the key exists.
//! - `If-None-Match` uses the weak comparison. `If-None-Match: *` holds when
//!   the key does not exist. On GET/HEAD a failed `If-None-Match` is `304`,
//!   elsewhere `412`.
//! - With both fields, `If-Match` is evaluated first (§13.2.2).
//!
//! Writes stay atomic: the common forms map straight onto a storage
//! precondition (`If-Match: "17"` is "version 17", `If-None-Match: *` is
//! "absent"); any other form reads the key, evaluates the condition against
//! its version, and writes with that version (or absence) as the storage
//! precondition, re-reading if another write got there first.

use axum::http::{HeaderMap, header};

use orbit_storage::{Precondition, Version};

use super::error::ApiError;

/// One parsed conditional field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tags {
    /// `*`
    Any,
    /// The entity-tags listed.
    List(Vec<Tag>),
}

/// One entity-tag. Only tags of the form `"<decimal>"` can name a version;
/// other well-formed tags are kept (they match nothing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    pub weak: bool,
    pub version: Option<Version>,
}

/// The conditions of one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Conditions {
    pub if_match: Option<Tags>,
    pub if_none_match: Option<Tags>,
}

/// What a failed condition answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failed {
    /// `412 Precondition Failed`.
    Precondition,
    /// `304 Not Modified` (a GET whose `If-None-Match` matched).
    NotModified,
}

impl Conditions {
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, ApiError> {
        Ok(Conditions {
            if_match: field(headers, header::IF_MATCH)?,
            if_none_match: field(headers, header::IF_NONE_MATCH)?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.if_match.is_none() && self.if_none_match.is_none()
    }

    /// The storage precondition that is exactly these conditions, when
    /// there is one (no read needed).
    pub fn as_precondition(&self) -> Option<Precondition> {
        match (&self.if_match, &self.if_none_match) {
            (None, None) => Some(Precondition::None),
            (None, Some(Tags::Any)) => Some(Precondition::Absent),
            (Some(Tags::List(tags)), None) => match tags.as_slice() {
                [
                    Tag {
                        weak: false,
                        version: Some(v),
                    },
                ] => Some(Precondition::Version(*v)),
                _ => None,
            },
            _ => None,
        }
    }

    /// Evaluates the conditions against the key's current version
    /// (`None`: absent), for a request that reads (`safe`) or writes.
    pub fn evaluate(&self, current: Option<Version>, safe: bool) -> Result<(), Failed> {
        if let Some(tags) = &self.if_match {
            let holds = match (tags, current) {
                (_, None) => false,
                (Tags::Any, Some(_)) => true,
                (Tags::List(list), Some(v)) => list.iter().any(|t| !t.weak && t.version == Some(v)),
            };
            if !holds {
                return Err(Failed::Precondition);
            }
        }
        if let Some(tags) = &self.if_none_match {
            let matches = match (tags, current) {
                (_, None) => false,
                (Tags::Any, Some(_)) => true,
                (Tags::List(list), Some(v)) => list.iter().any(|t| t.version == Some(v)),
            };
            if matches {
                return Err(if safe {
                    Failed::NotModified
                } else {
                    Failed::Precondition
                });
            }
        }
        Ok(())
    }
}

fn field(headers: &HeaderMap, name: header::HeaderName) -> Result<Option<Tags>, ApiError> {
    let mut values = headers.get_all(&name).iter().peekable();
    if values.peek().is_none() {
        return Ok(None);
    }
    let bad = |value: &str, why: &str| {
        ApiError::BadRequest(format!(
            "{name}: {value:?} {why}; expected * or a comma-separated list of entity-tags such as \"17\" (the ETag of a previous response)"
        ))
    };
    let mut tags = Vec::new();
    let mut any = false;
    for value in values {
        let text = value
            .to_str()
            .map_err(|_| ApiError::BadRequest(format!("header {name} is not valid ASCII")))?;
        for element in text.split(',') {
            let element = element.trim_matches([' ', '\t']);
            if element.is_empty() {
                continue; // empty list elements are allowed (RFC 9110 §5.6.1)
            }
            if element == "*" {
                any = true;
                continue;
            }
            tags.push(parse_tag(element).ok_or_else(|| bad(text, "is not valid"))?);
        }
    }
    match (any, tags.is_empty()) {
        (true, true) => Ok(Some(Tags::Any)),
        (true, false) => Err(bad(&format!("{name}"), "mixes * with entity-tags")),
        (false, false) => Ok(Some(Tags::List(tags))),
        (false, true) => Err(bad("", "is empty")),
    }
}

/// `entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE`, `etagc = %x21 / %x23-7E /
/// obs-text`.
fn parse_tag(text: &str) -> Option<Tag> {
    let (weak, quoted) = match text.strip_prefix("W/") {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let opaque = quoted.strip_prefix('"')?.strip_suffix('"')?;
    if !opaque
        .bytes()
        .all(|b| b == 0x21 || (0x23..=0x7E).contains(&b) || b >= 0x80)
    {
        return None;
    }
    let version = (!opaque.is_empty() && opaque.bytes().all(|b| b.is_ascii_digit()))
        .then(|| opaque.parse().ok())
        .flatten();
    Some(Tag { weak, version })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn conditions(pairs: &[(&str, &str)]) -> Result<Conditions, ApiError> {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        Conditions::from_headers(&headers)
    }

    #[test]
    fn parses_lists_stars_and_weak_tags() {
        let c = conditions(&[
            ("if-match", "\"1\", W/\"2\" ,\"nope\""),
            ("if-match", "\"3\""),
        ])
        .unwrap();
        assert_eq!(
            c.if_match,
            Some(Tags::List(vec![
                Tag {
                    weak: false,
                    version: Some(1)
                },
                Tag {
                    weak: true,
                    version: Some(2)
                },
                Tag {
                    weak: false,
                    version: None
                },
                Tag {
                    weak: false,
                    version: Some(3)
                },
            ]))
        );
        assert_eq!(
            conditions(&[("if-none-match", "*")]).unwrap().if_none_match,
            Some(Tags::Any)
        );
        for bad in ["17", "\"unterminated", "W/17", "\"a\"b\"", "*, \"1\"", ""] {
            assert!(
                conditions(&[("if-match", bad)]).is_err(),
                "{bad:?} must be refused"
            );
        }
    }

    #[test]
    fn strong_comparison_for_if_match_weak_for_if_none_match() {
        let c = conditions(&[("if-match", "W/\"5\"")]).unwrap();
        assert_eq!(c.evaluate(Some(5), false), Err(Failed::Precondition));
        let c = conditions(&[("if-match", "\"4\", \"5\"")]).unwrap();
        assert_eq!(c.evaluate(Some(5), false), Ok(()));
        assert_eq!(c.evaluate(None, false), Err(Failed::Precondition));
        let c = conditions(&[("if-match", "*")]).unwrap();
        assert_eq!(c.evaluate(Some(9), false), Ok(()));
        assert_eq!(c.evaluate(None, false), Err(Failed::Precondition));
        let c = conditions(&[("if-none-match", "W/\"5\"")]).unwrap();
        assert_eq!(c.evaluate(Some(5), true), Err(Failed::NotModified));
        assert_eq!(c.evaluate(Some(5), false), Err(Failed::Precondition));
        assert_eq!(c.evaluate(Some(6), false), Ok(()));
        assert_eq!(c.evaluate(None, false), Ok(()));
    }

    #[test]
    fn only_exact_forms_skip_the_read() {
        let p = |h: &[(&str, &str)]| conditions(h).unwrap().as_precondition();
        assert_eq!(p(&[]), Some(Precondition::None));
        assert_eq!(p(&[("if-match", "\"7\"")]), Some(Precondition::Version(7)));
        assert_eq!(p(&[("if-none-match", "*")]), Some(Precondition::Absent));
        assert_eq!(p(&[("if-match", "W/\"7\"")]), None);
        assert_eq!(p(&[("if-match", "*")]), None);
        assert_eq!(p(&[("if-match", "\"7\", \"8\"")]), None);
    }
}
