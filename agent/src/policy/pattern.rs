//! cgroup v2 path patterns.
//!
//! A pattern is an absolute cgroup v2 path (relative to the cgroup2 mount),
//! each segment of which may use glob syntax (`*`, `?`, `[abc]`, `{a,b}`; a
//! wildcard never crosses a `/`). A pattern matches a cgroup path if it
//! matches the path itself **or any ancestor of it**: a job's sub-cgroups
//! belong to the same workload.

use std::fmt;
use std::str::FromStr;

use globset::{GlobBuilder, GlobMatcher};

/// Characters that make a segment a glob rather than a literal name.
const GLOB_META: &[char] = &['*', '?', '[', ']', '{', '}', '\\'];

/// A validated cgroup path pattern. See the module documentation.
#[derive(Clone)]
pub struct CgroupPattern {
    raw: String,
    /// Byte length of the static prefix (`raw[..static_len]`).
    static_len: usize,
    /// `None` for an exact pattern (no glob metacharacter at all).
    matcher: Option<GlobMatcher>,
}

impl CgroupPattern {
    /// Parses and validates a pattern.
    ///
    /// Refused: empty or relative patterns, `/` itself (the whole host), a
    /// trailing `/`, empty segments (`//`), `.` and `..` segments, `**`,
    /// control characters, a glob in the first segment (`/*`-like patterns
    /// cover the whole host), and invalid glob syntax.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        if pattern.is_empty() {
            return Err("cgroup pattern is empty".to_string());
        }
        if !pattern.starts_with('/') {
            return Err(format!(
                "cgroup pattern `{pattern}` must be absolute (start with `/`, relative to the \
                 cgroup2 mount), e.g. `/chunk-jobs/nightly/*`"
            ));
        }
        if pattern == "/" {
            return Err(
                "cgroup pattern `/` would match every process on the host: name a specific \
                 cgroup, e.g. `/chunk-jobs/nightly/*`"
                    .to_string(),
            );
        }
        if pattern.ends_with('/') {
            return Err(format!("cgroup pattern `{pattern}` must not end with `/`"));
        }
        if pattern.chars().any(char::is_control) {
            return Err(format!(
                "cgroup pattern {pattern:?} contains a control character"
            ));
        }
        let mut static_len = pattern.len();
        let mut offset = 0; // byte offset of the `/` before the current segment
        for (i, segment) in pattern[1..].split('/').enumerate() {
            if segment.is_empty() {
                return Err(format!(
                    "cgroup pattern `{pattern}` has an empty segment (`//`)"
                ));
            }
            if segment == "." || segment == ".." {
                return Err(format!(
                    "cgroup pattern `{pattern}` has a `{segment}` segment: `.` and `..` are not \
                     allowed"
                ));
            }
            if segment.contains("**") {
                return Err(format!(
                    "cgroup pattern `{pattern}` uses `**`, which is not allowed: a pattern \
                     already covers every sub-cgroup of what it matches (`/chunk-jobs/*` \
                     matches `/chunk-jobs/a/b`)"
                ));
            }
            if segment.contains(GLOB_META) {
                if i == 0 {
                    return Err(format!(
                        "cgroup pattern `{pattern}` has a glob in its first segment, which could \
                         cover the whole host: start with a literal cgroup name, e.g. \
                         `/chunk-jobs/*`"
                    ));
                }
                if static_len == pattern.len() {
                    static_len = offset;
                }
            }
            offset += 1 + segment.len();
        }
        let matcher = if static_len == pattern.len() {
            None
        } else {
            let glob = GlobBuilder::new(pattern)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| format!("invalid cgroup pattern `{pattern}`: {}", e.kind()))?;
            Some(glob.compile_matcher())
        };
        Ok(Self {
            raw: pattern.to_string(),
            static_len,
            matcher,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// Whether the pattern has no glob metacharacter (it names one cgroup).
    pub fn is_exact(&self) -> bool {
        self.matcher.is_none()
    }

    /// The leading segments before the first segment containing a glob
    /// metacharacter; the whole pattern if it is exact. Never empty nor `/`.
    pub fn static_prefix(&self) -> &str {
        &self.raw[..self.static_len]
    }

    /// Whether `cgroup_path` (absolute, as in `/proc/<pid>/cgroup`, e.g.
    /// `/chunk-jobs/nightly/run-1/sub`) is matched by the pattern itself or
    /// has an ancestor that is. A trailing `/` on the path is ignored; a
    /// relative path matches nothing.
    pub fn matches(&self, cgroup_path: &str) -> bool {
        let path = cgroup_path.trim_end_matches('/');
        if !path.starts_with('/') {
            return false;
        }
        let prefix = self.static_prefix();
        if !is_same_or_descendant(path, prefix) {
            return false;
        }
        let Some(matcher) = &self.matcher else {
            return true;
        };
        // A glob pattern has more segments than its static prefix, so only
        // ancestors strictly longer than the prefix can match.
        let ancestors = path
            .match_indices('/')
            .map(|(i, _)| i)
            .filter(|&i| i > self.static_len)
            .map(|i| &path[..i]);
        ancestors
            .chain(std::iter::once(path))
            .any(|candidate| matcher.is_match(candidate))
    }
}

/// `path == prefix`, or `path` is below `prefix` (at a `/` boundary).
fn is_same_or_descendant(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

impl fmt::Debug for CgroupPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CgroupPattern").field(&self.raw).finish()
    }
}

impl fmt::Display for CgroupPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl PartialEq for CgroupPattern {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Eq for CgroupPattern {}

impl std::hash::Hash for CgroupPattern {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.raw.hash(state);
    }
}

impl FromStr for CgroupPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(s: &str) -> CgroupPattern {
        CgroupPattern::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn refused(s: &str) -> String {
        match CgroupPattern::parse(s) {
            Ok(p) => panic!("{s} should be refused, got {p:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn glob_matches_children_and_their_descendants_only() {
        let p = pat("/chunk-jobs/nightly/*");
        assert!(p.matches("/chunk-jobs/nightly/run-1"));
        assert!(p.matches("/chunk-jobs/nightly/run-1/sub"));
        assert!(p.matches("/chunk-jobs/nightly/run-1/sub/deeper"));
        assert!(!p.matches("/chunk-jobs/nightly"));
        assert!(!p.matches("/chunk-jobs/nightly-2/x"));
        assert!(!p.matches("/chunk-jobs"));
        assert!(!p.matches("/other/nightly/run-1"));
        assert!(!p.matches("/"));
    }

    #[test]
    fn exact_pattern_matches_itself_and_descendants_not_string_prefix_siblings() {
        let p = pat("/a/b");
        assert!(p.matches("/a/b"));
        assert!(p.matches("/a/b/c"));
        assert!(p.matches("/a/b/c/d"));
        assert!(!p.matches("/a/bc"));
        assert!(!p.matches("/a/bc/d"));
        assert!(!p.matches("/a"));
        assert!(!p.matches("/"));
    }

    #[test]
    fn systemd_unit_pattern_matches_the_service_cgroup() {
        let p = pat("/system.slice/nightly-chunker.service");
        assert!(p.is_exact());
        assert!(p.matches("/system.slice/nightly-chunker.service"));
        assert!(!p.matches("/system.slice/nightly-chunker.service2"));
        let t = pat("/system.slice/nightly-chunker@*.service");
        assert!(t.matches("/system.slice/nightly-chunker@2024-01-01.service"));
        assert!(!t.matches("/system.slice/nightly-chunker.service"));
    }

    #[test]
    fn glob_syntax_per_segment() {
        let p = pat("/jobs/run-?/[ab]x/{red,blue}");
        assert!(p.matches("/jobs/run-1/ax/red"));
        assert!(p.matches("/jobs/run-2/bx/blue/child"));
        assert!(!p.matches("/jobs/run-10/ax/red"));
        assert!(!p.matches("/jobs/run-1/cx/red"));
        assert!(!p.matches("/jobs/run-1/ax/green"));
        // `*` never crosses a `/`, but ancestors make the pattern cover sub-cgroups.
        let mid = pat("/jobs/*/worker");
        assert!(mid.matches("/jobs/a/worker"));
        assert!(mid.matches("/jobs/a/worker/x"));
        assert!(!mid.matches("/jobs/a/b/worker"));
        assert!(!mid.matches("/jobs/a"));
    }

    #[test]
    fn trailing_slash_on_path_is_ignored_and_relative_paths_never_match() {
        let p = pat("/a/b");
        assert!(p.matches("/a/b/"));
        assert!(!p.matches("a/b"));
        assert!(!p.matches(""));
        assert!(!pat("/a/*").matches("a/b"));
    }

    #[test]
    fn static_prefix_values() {
        assert_eq!(
            pat("/chunk-jobs/nightly/*").static_prefix(),
            "/chunk-jobs/nightly"
        );
        assert_eq!(pat("/chunk-jobs/*/x").static_prefix(), "/chunk-jobs");
        assert_eq!(pat("/a/b-{x,y}/c").static_prefix(), "/a");
        assert_eq!(pat("/a/b/c").static_prefix(), "/a/b/c");
        assert_eq!(pat("/a").static_prefix(), "/a");
        assert_eq!(pat("/a/b\\*").static_prefix(), "/a");
    }

    #[test]
    fn exactness() {
        assert!(pat("/a/b").is_exact());
        assert!(pat("/system.slice/x.service").is_exact());
        assert!(!pat("/a/*").is_exact());
        assert!(!pat("/a/[bc]").is_exact());
        assert_eq!(pat("/a/*").as_str(), "/a/*");
        assert_eq!(pat("/a/*").to_string(), "/a/*");
    }

    #[test]
    fn root_pattern_is_refused() {
        assert!(refused("/").contains("every process on the host"));
    }

    #[test]
    fn double_star_is_refused() {
        assert!(refused("/chunk-jobs/**").contains("`**`"));
        assert!(refused("/chunk-jobs/**/x").contains("`**`"));
        assert!(refused("/chunk-jobs/a**").contains("`**`"));
    }

    #[test]
    fn relative_pattern_is_refused() {
        assert!(refused("chunk-jobs/nightly").contains("absolute"));
        assert!(refused("").contains("empty"));
    }

    #[test]
    fn dot_dot_and_dot_segments_are_refused() {
        assert!(refused("/chunk-jobs/../etc").contains("`..`"));
        assert!(refused("/chunk-jobs/./x").contains("`.`"));
    }

    #[test]
    fn malformed_patterns_are_refused() {
        assert!(refused("/a/b/").contains("end with `/`"));
        assert!(refused("/a//b").contains("empty segment"));
        assert!(refused("/a/\nb").contains("control character"));
        assert!(refused("/*").contains("first segment"));
        assert!(refused("/{a,b}/c").contains("first segment"));
        assert!(refused("/a/[b").contains("invalid cgroup pattern"));
    }
}
