//! Query-string parameters: defaults, ranges and the messages for values outside them.

use std::str::FromStr;

use crate::error::ApiError;

/// Documents returned when `k` is not given.
pub const DEFAULT_K: usize = 10;
/// Largest `k` accepted: each document needs several page hits per query
/// page, so a large `k` multiplies the search work.
pub const MAX_K: usize = 100;
/// Cluster members returned when `limit` is not given.
pub const DEFAULT_MEMBER_LIMIT: usize = 50;
/// Largest `limit` accepted for cluster members, which keeps one response
/// far below API Gateway's 10 MB payload limit.
pub const MAX_MEMBER_LIMIT: usize = 500;

/// The query parameters of one request, checked against the names a route accepts.
pub(crate) struct Params<'a> {
    pairs: &'a [(String, String)],
}

impl<'a> Params<'a> {
    /// Rejects names outside `accepted`, so a misspelt parameter is not silently ignored.
    pub(crate) fn new(pairs: &'a [(String, String)], accepted: &[&str]) -> Result<Params<'a>, ApiError> {
        for (name, value) in pairs {
            if !accepted.contains(&name.as_str()) {
                let reason = if accepted.is_empty() {
                    "this route takes no query parameters".to_owned()
                } else {
                    format!("unknown parameter; this route accepts {}", accepted.join(", "))
                };
                return Err(ApiError::InvalidParameter {
                    name: name.clone(),
                    value: value.clone(),
                    reason,
                });
            }
        }
        Ok(Params { pairs })
    }

    fn value(&self, name: &str) -> Result<Option<&'a str>, ApiError> {
        let mut values = self.pairs.iter().filter(|(key, _)| key == name);
        let first = values.next();
        if let Some((_, second)) = values.next() {
            return Err(ApiError::InvalidParameter {
                name: name.to_owned(),
                value: second.clone(),
                reason: "given more than once; give it once".to_owned(),
            });
        }
        Ok(first.map(|(_, value)| value.as_str()))
    }

    fn parse<T: FromStr>(&self, name: &str, expected: &str) -> Result<Option<T>, ApiError> {
        let Some(text) = self.value(name)? else {
            return Ok(None);
        };
        text.trim().parse().map(Some).map_err(|_| ApiError::InvalidParameter {
            name: name.to_owned(),
            value: text.to_owned(),
            reason: format!("expected {expected}"),
        })
    }

    fn integer_in(&self, name: &str, default: usize, min: usize, max: usize) -> Result<usize, ApiError> {
        let expected = format!("an integer from {min} to {max}");
        // Parsed as u64 so that a huge value is reported as out of range, not as malformed.
        let Some(value) = self.parse::<u64>(name, &expected)? else {
            return Ok(default);
        };
        if value < min as u64 || value > max as u64 {
            return Err(ApiError::InvalidParameter {
                name: name.to_owned(),
                value: value.to_string(),
                reason: format!("expected {expected}"),
            });
        }
        Ok(value as usize)
    }

    /// Returns `k`, the number of documents to return: 1 to [`MAX_K`], default [`DEFAULT_K`].
    pub(crate) fn k(&self) -> Result<usize, ApiError> {
        self.integer_in("k", DEFAULT_K, 1, MAX_K)
    }

    /// Returns `min_score`, the cosine similarity below which page hits are dropped: -1 to 1, default -1 (keep all).
    pub(crate) fn min_score(&self) -> Result<f32, ApiError> {
        let expected = "a number from -1 to 1 (cosine similarity)";
        let Some(value) = self.parse::<f32>("min_score", expected)? else {
            return Ok(-1.0);
        };
        if !(-1.0..=1.0).contains(&value) {
            return Err(ApiError::InvalidParameter {
                name: "min_score".to_owned(),
                value: value.to_string(),
                reason: format!("expected {expected}"),
            });
        }
        Ok(value)
    }

    /// Returns `page`, the 1-based page to search with, or `None` to search with every page.
    pub(crate) fn page(&self) -> Result<Option<u32>, ApiError> {
        let expected = "a page number from 1";
        match self.parse::<u32>("page", expected)? {
            Some(0) => Err(ApiError::InvalidParameter {
                name: "page".to_owned(),
                value: "0".to_owned(),
                reason: format!("expected {expected} (pages are 1-based)"),
            }),
            page => Ok(page),
        }
    }

    /// Returns `offset`, the first member to return, default 0.
    pub(crate) fn offset(&self) -> Result<usize, ApiError> {
        self.integer_in("offset", 0, 0, u32::MAX as usize)
    }

    /// Returns `limit`, the number of members to return: 1 to [`MAX_MEMBER_LIMIT`], default [`DEFAULT_MEMBER_LIMIT`].
    pub(crate) fn limit(&self) -> Result<usize, ApiError> {
        self.integer_in("limit", DEFAULT_MEMBER_LIMIT, 1, MAX_MEMBER_LIMIT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect()
    }

    #[test]
    fn k_defaults_and_bounds() {
        let empty = pairs(&[]);
        assert_eq!(Params::new(&empty, &["k"]).unwrap().k().unwrap(), DEFAULT_K);
        for bad in ["0", "101", "1000000", "99999999999999999999999", "ten", "-1", "2.5"] {
            let given = pairs(&[("k", bad)]);
            let error = Params::new(&given, &["k"]).unwrap().k().unwrap_err();
            assert_eq!(error.status(), 400, "k={bad}");
            assert!(error.to_string().contains("from 1 to 100"), "k={bad}: {error}");
        }
        let given = pairs(&[("k", "100")]);
        assert_eq!(Params::new(&given, &["k"]).unwrap().k().unwrap(), 100);
    }

    #[test]
    fn min_score_rejects_out_of_range() {
        for bad in ["1.5", "-1.01", "NaN", "inf", "x"] {
            let given = pairs(&[("min_score", bad)]);
            let error = Params::new(&given, &["min_score"]).unwrap().min_score().unwrap_err();
            assert!(error.to_string().contains("from -1 to 1"), "min_score={bad}: {error}");
        }
        let given = pairs(&[("min_score", "0.25")]);
        assert_eq!(Params::new(&given, &["min_score"]).unwrap().min_score().unwrap(), 0.25);
    }

    #[test]
    fn params_reject_unknown_and_repeated_names() {
        let unknown = pairs(&[("kk", "5")]);
        let error = Params::new(&unknown, &["k", "min_score"]).err().unwrap();
        assert!(error.to_string().contains("accepts k, min_score"), "{error}");
        let repeated = pairs(&[("k", "5"), ("k", "6")]);
        let error = Params::new(&repeated, &["k"]).unwrap().k().unwrap_err();
        assert!(error.to_string().contains("more than once"), "{error}");
    }

    #[test]
    fn limit_and_page_bounds() {
        let given = pairs(&[("limit", "501")]);
        assert!(Params::new(&given, &["limit"]).unwrap().limit().is_err());
        let given = pairs(&[("page", "0")]);
        assert!(Params::new(&given, &["page"]).unwrap().page().is_err());
        let given = pairs(&[("page", "3")]);
        assert_eq!(Params::new(&given, &["page"]).unwrap().page().unwrap(), Some(3));
    }
}
