//! `google.api.http` path templates (`/v1/{name=shelves/*/books/*}:publish`): parsing and
//! matching request paths, capturing the variables' values.
//!
//! ```text
//! Template = "/" Segments [ Verb ] ;
//! Segments = Segment { "/" Segment } ;
//! Segment  = "*" | "**" | LITERAL | Variable ;
//! Variable = "{" FieldPath [ "=" Segments ] "}" ;
//! Verb     = ":" LITERAL ;
//! ```

use std::fmt;

use percent_encoding::percent_decode_str;

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    segments: Vec<Segment>,
    verb: Option<String>,
    variables: Vec<Variable>,
    source: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `*`: exactly one segment.
    Single,
    /// `**`: any number of segments (only last).
    Multi,
}

/// A `{field.path=…}` covering `segments[start..end]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// The request field the value goes to, e.g. `["book", "name"]`.
    pub field_path: Vec<String>,
    start: usize,
    end: usize,
    /// The variable's own pattern (`*` when none is given), for documentation.
    pub pattern: String,
}

/// Why a template does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid path template {template:?}: {reason}")]
pub struct TemplateError {
    template: String,
    reason: &'static str,
}

/// A successful match: each variable's field path and its percent-decoded value.
pub type Captures<'t> = Vec<(&'t [String], String)>;

/// A path that matched but cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("path segment {0:?} is not valid percent-encoded UTF-8")]
pub struct BadSegment(pub String);

impl PathTemplate {
    pub fn parse(template: &str) -> Result<Self, TemplateError> {
        let fail = |reason| TemplateError {
            template: template.to_owned(),
            reason,
        };
        let rest = template
            .strip_prefix('/')
            .ok_or_else(|| fail("must start with /"))?;
        let (path, verb) = split_verb(rest).map_err(fail)?;
        let mut segments = Vec::new();
        let mut variables = Vec::new();
        for part in split_top_level(path).map_err(fail)? {
            if let Some(inner) = part.strip_prefix('{') {
                let inner = inner.strip_suffix('}').ok_or_else(|| fail("unclosed {"))?;
                let (field, pattern) = inner.split_once('=').unwrap_or((inner, "*"));
                let field_path: Vec<String> = field.split('.').map(str::to_owned).collect();
                if field_path.iter().any(|name| !is_identifier(name)) {
                    return Err(fail("variable names must be field paths like book.name"));
                }
                let start = segments.len();
                for sub in pattern.split('/') {
                    segments.push(parse_plain_segment(sub).map_err(fail)?);
                }
                variables.push(Variable {
                    field_path,
                    start,
                    end: segments.len(),
                    pattern: pattern.to_owned(),
                });
            } else {
                segments.push(parse_plain_segment(part).map_err(fail)?);
            }
        }
        if let Some(position) = segments.iter().position(|s| *s == Segment::Multi)
            && position + 1 != segments.len()
        {
            return Err(fail("** may only be the last segment"));
        }
        Ok(Self {
            segments,
            verb: verb.map(str::to_owned),
            variables,
            source: template.to_owned(),
        })
    }

    pub fn variables(&self) -> &[Variable] {
        &self.variables
    }

    /// The template as OpenAPI writes paths: each variable as `{field.path}`.
    pub fn openapi_path(&self) -> String {
        let mut out = String::new();
        let mut index = 0;
        while index < self.segments.len() {
            out.push('/');
            if let Some(variable) = self.variables.iter().find(|v| v.start == index) {
                out.push('{');
                out.push_str(&variable.field_path.join("."));
                out.push('}');
                index = variable.end.max(index + 1);
                continue;
            }
            match &self.segments[index] {
                Segment::Literal(literal) => out.push_str(literal),
                Segment::Single => out.push('*'),
                Segment::Multi => out.push_str("**"),
            }
            index += 1;
        }
        if self.segments.is_empty() {
            out.push('/');
        }
        if let Some(verb) = &self.verb {
            out.push(':');
            out.push_str(verb);
        }
        out
    }

    /// How specific the template is, to prefer `/v1/me` over `/v1/{name=**}` when both match.
    pub fn specificity(&self) -> (usize, bool, bool) {
        let literals = self
            .segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count();
        let no_multi = !self.segments.contains(&Segment::Multi);
        (literals, self.verb.is_some(), no_multi)
    }

    /// Matches a raw request path (percent-encoded, without the query). `Ok(None)` when it does
    /// not match.
    pub fn matches(&self, path: &str) -> Result<Option<Captures<'_>>, BadSegment> {
        let Some(rest) = path.strip_prefix('/') else {
            return Ok(None);
        };
        let rest = match &self.verb {
            Some(verb) => match rest.rsplit_once(':') {
                Some((head, tail)) if tail == verb && !tail.contains('/') => head,
                _ => return Ok(None),
            },
            None => rest,
        };
        let parts: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/').collect()
        };
        let multi = self.segments.last() == Some(&Segment::Multi);
        let fixed = self.segments.len() - usize::from(multi);
        if parts.len() < fixed || (!multi && parts.len() != fixed) {
            return Ok(None);
        }
        let mut decoded = Vec::with_capacity(parts.len());
        for part in &parts {
            let text = percent_decode_str(part)
                .decode_utf8()
                .map_err(|_| BadSegment((*part).to_owned()))?;
            decoded.push(text.into_owned());
        }
        for (segment, value) in self.segments.iter().zip(&decoded) {
            match segment {
                Segment::Literal(literal) if literal != value => return Ok(None),
                Segment::Single if value.is_empty() => return Ok(None),
                _ => {}
            }
        }
        let captures = self
            .variables
            .iter()
            .map(|variable| {
                let end = if multi && variable.end == self.segments.len() {
                    decoded.len()
                } else {
                    variable.end
                };
                (
                    variable.field_path.as_slice(),
                    decoded[variable.start..end].join("/"),
                )
            })
            .collect();
        Ok(Some(captures))
    }
}

impl fmt::Display for PathTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Splits off `:verb` at the top level (a `:` inside `{…}` or before the last `/` is not one).
fn split_verb(path: &str) -> Result<(&str, Option<&str>), &'static str> {
    let mut depth = 0usize;
    let mut verb_at = None;
    for (index, c) in path.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.checked_sub(1).ok_or("unbalanced }")?,
            '/' if depth == 0 => verb_at = None,
            ':' if depth == 0 => verb_at = Some(index),
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unclosed {");
    }
    match verb_at {
        Some(index) => {
            let verb = &path[index + 1..];
            if verb.is_empty() || !verb.chars().all(is_literal_char) {
                return Err("invalid custom verb");
            }
            Ok((&path[..index], Some(verb)))
        }
        None => Ok((path, None)),
    }
}

/// Splits on `/` outside braces.
fn split_top_level(path: &str) -> Result<Vec<&str>, &'static str> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (index, c) in path.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            '/' if depth == 0 => {
                parts.push(&path[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    parts.push(&path[start..]);
    Ok(parts)
}

fn parse_plain_segment(text: &str) -> Result<Segment, &'static str> {
    match text {
        "*" => Ok(Segment::Single),
        "**" => Ok(Segment::Multi),
        "" => Err("empty segment"),
        literal if literal.chars().all(is_literal_char) => Ok(Segment::Literal(literal.to_owned())),
        _ => Err("invalid literal segment"),
    }
}

fn is_literal_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '-' | '_' | '.' | '~' | '@' | '+' | '!' | '$' | '&' | '\'' | '(' | ')' | ',' | ';'
        )
}

fn is_identifier(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn captures(template: &str, path: &str) -> Option<Vec<(String, String)>> {
        let template = PathTemplate::parse(template).unwrap();
        template.matches(path).unwrap().map(|captures| {
            captures
                .into_iter()
                .map(|(field, value)| (field.join("."), value))
                .collect()
        })
    }

    fn pairs(items: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        Some(
            items
                .iter()
                .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn literal_paths_match_exactly() {
        assert_eq!(captures("/v1/me", "/v1/me"), pairs(&[]));
        assert_eq!(captures("/v1/me", "/v1/me/"), None);
        assert_eq!(captures("/v1/me", "/v1/you"), None);
        assert_eq!(captures("/v1/me", "/v1"), None);
    }

    #[test]
    fn simple_variables_take_one_decoded_segment() {
        assert_eq!(
            captures("/v1/users/{user_id}", "/v1/users/a%20b"),
            pairs(&[("user_id", "a b")])
        );
        assert_eq!(captures("/v1/users/{user_id}", "/v1/users/a/b"), None);
        assert_eq!(captures("/v1/users/{user_id}", "/v1/users/"), None);
    }

    #[test]
    fn nested_fields_and_patterns() {
        assert_eq!(
            captures(
                "/v1/{book.name=shelves/*/books/*}",
                "/v1/shelves/s1/books/b2"
            ),
            pairs(&[("book.name", "shelves/s1/books/b2")])
        );
        assert_eq!(
            captures(
                "/v1/{book.name=shelves/*/books/*}",
                "/v1/shelves/s1/novels/b2"
            ),
            None
        );
    }

    #[test]
    fn double_wildcards_take_the_rest() {
        assert_eq!(
            captures("/v1/files/{path=**}", "/v1/files/a/b/c.txt"),
            pairs(&[("path", "a/b/c.txt")])
        );
        assert_eq!(
            captures("/v1/{name=projects/*/**}", "/v1/projects/p/x/y"),
            pairs(&[("name", "projects/p/x/y")])
        );
    }

    #[test]
    fn custom_verbs_must_match() {
        let grant = "/v1/users/{user_id}/roles:grant";
        assert_eq!(
            captures(grant, "/v1/users/u1/roles:grant"),
            pairs(&[("user_id", "u1")])
        );
        assert_eq!(captures(grant, "/v1/users/u1/roles:revoke"), None);
        assert_eq!(captures(grant, "/v1/users/u1/roles"), None);
        assert_eq!(
            captures("/v1/{name=books/*}:publish", "/v1/books/b:1:publish"),
            pairs(&[("name", "books/b:1")])
        );
        // Without a verb in the template, a colon is part of the value.
        assert_eq!(
            captures("/v1/books/{id}", "/v1/books/a:b"),
            pairs(&[("id", "a:b")])
        );
    }

    #[test]
    fn openapi_paths_name_each_variable() {
        let parse = |t| PathTemplate::parse(t).unwrap().openapi_path();
        assert_eq!(
            parse("/v1/users/{user_id}/roles:grant"),
            "/v1/users/{user_id}/roles:grant"
        );
        assert_eq!(
            parse("/v1/{book.name=shelves/*/books/*}"),
            "/v1/{book.name}"
        );
        assert_eq!(parse("/v1/files/{path=**}"), "/v1/files/{path}");
    }

    #[test]
    fn more_literals_are_more_specific() {
        let me = PathTemplate::parse("/v1/me").unwrap();
        let any = PathTemplate::parse("/v1/{name=**}").unwrap();
        assert!(me.specificity() > any.specificity());
    }

    #[test]
    fn rejects_malformed_templates() {
        for template in [
            "v1/me",
            "/v1/{name",
            "/v1/name}",
            "/v1/{na-me}",
            "/v1/**/x",
            "/v1//x",
            "/v1/me:",
            "/v1/{a=**}/b",
        ] {
            assert!(PathTemplate::parse(template).is_err(), "{template}");
        }
    }

    #[test]
    fn bad_percent_encoding_is_an_error() {
        let template = PathTemplate::parse("/v1/users/{user_id}").unwrap();
        assert!(template.matches("/v1/users/%FF").is_err());
    }
}
