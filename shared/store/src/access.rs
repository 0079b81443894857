//! Per-function access policies, read from the `access.json` beside each
//! Lambda crate: the same file the deployment template's IAM statements are
//! checked against.

use std::collections::BTreeMap;
use std::fmt;

use crate::StoreError;

/// A store operation, named after the S3 permission it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// `s3:GetObject` (also HeadObject).
    Get,
    /// `s3:PutObject`.
    Put,
    /// `s3:ListBucket` with an `s3:prefix` condition.
    List,
    /// `s3:DeleteObject`.
    Delete,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::Get => "get",
            Operation::Put => "put",
            Operation::List => "list",
            Operation::Delete => "delete",
        })
    }
}

/// Key prefixes granted for each operation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Access {
    granted: BTreeMap<Operation, Vec<String>>,
}

impl Access {
    /// Grants `operation` on keys under `prefix`.
    pub fn grant(mut self, operation: Operation, prefix: impl Into<String>) -> Self {
        self.granted.entry(operation).or_default().push(prefix.into());
        self
    }

    /// Parses an `access.json` document such as
    /// `{"get": ["FOLIO_SCANS_PREFIX"], "put": ["FOLIO_VECTORS_PREFIX"]}`, where
    /// each entry names the environment variable that contains the prefix;
    /// `resolve` maps a name to its prefix.
    pub fn from_json(text: &str, resolve: impl Fn(&str) -> String) -> Result<Access, String> {
        let parsed: BTreeMap<Operation, Vec<String>> =
            serde_json::from_str(text).map_err(|error| format!("invalid access.json: {error}"))?;
        let mut access = Access::default();
        for (operation, names) in parsed {
            for name in names {
                access = access.grant(operation, resolve(&name));
            }
        }
        Ok(access)
    }

    pub(crate) fn check(&self, operation: Operation, key: &str) -> Result<(), StoreError> {
        let prefixes = self.granted.get(&operation).map(Vec::as_slice).unwrap_or(&[]);
        if prefixes.iter().any(|prefix| key.starts_with(prefix.as_str())) {
            return Ok(());
        }
        Err(StoreError::Denied {
            key: key.to_owned(),
            operation,
            granted: if prefixes.is_empty() {
                "none".to_owned()
            } else {
                prefixes.join(", ")
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_allows_granted_prefix_only() {
        let access = Access::default().grant(Operation::Get, "scans/");
        assert!(access.check(Operation::Get, "scans/a.tif").is_ok());
        assert!(access.check(Operation::Get, "vectors/a.parquet").is_err());
        assert!(access.check(Operation::Put, "scans/a.tif").is_err());
    }

    #[test]
    fn from_json_resolves_variable_names() {
        let access = Access::from_json(r#"{"put": ["FOLIO_VECTORS_PREFIX"]}"#, |name| {
            assert_eq!(name, "FOLIO_VECTORS_PREFIX");
            "v/".to_owned()
        })
        .unwrap();
        assert!(access.check(Operation::Put, "v/x").is_ok());
        let message = access.check(Operation::Delete, "v/x").unwrap_err().to_string();
        assert!(message.contains("delete"), "{message}");
    }

    #[test]
    fn from_json_rejects_unknown_operation() {
        assert!(Access::from_json(r#"{"copy": []}"#, |n| n.to_owned()).is_err());
    }
}
