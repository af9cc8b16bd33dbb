//! What a run had measured when an error ended it, carried by the error
//! itself: the run's failed report (`app::run`) takes it from there, and
//! the error the user sees is the one that ended the run, unchanged.

use std::fmt;

use crate::report::NodeInfo;

/// An error with what was measured before it: the subcommand's partial
/// details and the nodes as surveyed. `app::run` takes it apart
/// (`Measured::split`); until then it reads as the error it carries (the
/// same message and causes, `{:#}`).
#[derive(Debug)]
pub struct Measured {
    /// What had been measured by then, in the subcommand's own terms.
    pub partial: Option<serde_json::Value>,
    /// The nodes as the survey found them (empty: not known here).
    pub nodes: Vec<NodeInfo>,
    error: anyhow::Error,
}

impl fmt::Display for Measured {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The error's own message; its causes follow as this one's sources.
        fmt::Display::fmt(&self.error, f)
    }
}

impl std::error::Error for Measured {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

impl Measured {
    /// `e`, with the subcommand's details measured so far.
    pub fn partial(partial: impl serde::Serialize, e: anyhow::Error) -> anyhow::Error {
        let (mut m, error) = Measured::split(e);
        m.partial = serde_json::to_value(partial).ok();
        m.with(error)
    }

    /// `e`, with the nodes as a survey found them.
    pub fn nodes(nodes: Vec<NodeInfo>, e: anyhow::Error) -> anyhow::Error {
        let (mut m, error) = Measured::split(e);
        m.nodes = nodes;
        m.with(error)
    }

    /// What `e` carries (nothing measured when it carries nothing), and the
    /// error itself, as it was before it was wrapped.
    pub fn split(e: anyhow::Error) -> (Found, anyhow::Error) {
        match e.downcast::<Measured>() {
            Ok(m) => (
                Found {
                    partial: m.partial,
                    nodes: m.nodes,
                },
                m.error,
            ),
            Err(e) => (Found::default(), e),
        }
    }

    /// The error `e` carries, or `e` when it carries nothing: for a caller
    /// that looks for a cause's type (`anyhow::Error::chain`).
    pub fn error(e: &anyhow::Error) -> &anyhow::Error {
        match e.downcast_ref::<Measured>() {
            Some(m) => &m.error,
            None => e,
        }
    }
}

/// What an error carried (`Measured::split`).
#[derive(Debug, Default)]
pub struct Found {
    /// What had been measured by then, in the subcommand's own terms.
    pub partial: Option<serde_json::Value>,
    /// The nodes as the survey found them (empty: not known).
    pub nodes: Vec<NodeInfo>,
}

impl Found {
    fn with(self, error: anyhow::Error) -> anyhow::Error {
        Measured {
            partial: self.partial,
            nodes: self.nodes,
            error,
        }
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            address: "127.0.0.1:1".into(),
            expected_role: crate::topology::Role::Master,
            role: None,
            redis_version: None,
            server: None,
            maxmemory_bytes: None,
            maxmemory_policy: None,
            persistence: None,
            error: None,
        }
    }

    #[test]
    fn it_reads_as_the_error_it_carries_and_gives_it_back() {
        let e = anyhow::anyhow!("connection refused").context("connecting to master");
        let want = format!("{e:#}");
        let e = Measured::partial(serde_json::json!({"rounds_completed": 1}), e);
        let e = Measured::nodes(vec![node("master")], e);
        assert_eq!(format!("{e:#}"), want);
        let (found, e) = Measured::split(e);
        assert_eq!(format!("{e:#}"), want);
        assert_eq!(found.partial.unwrap()["rounds_completed"], 1);
        assert_eq!(found.nodes.len(), 1);
    }

    #[test]
    fn an_error_that_carries_nothing_splits_into_nothing() {
        let (found, e) = Measured::split(anyhow::anyhow!("plain"));
        assert!(found.partial.is_none() && found.nodes.is_empty());
        assert_eq!(e.to_string(), "plain");
    }

    #[test]
    fn a_cause_is_found_under_it() {
        let inner = crate::run::safety::Refused {
            kind: crate::run::safety::RefusedKind::NoRoom,
            message: "full".into(),
        };
        let e = Measured::nodes(vec![node("master")], inner.into());
        assert_eq!(
            crate::run::safety::RefusedKind::of(&e),
            Some(crate::run::safety::RefusedKind::NoRoom)
        );
        assert!(Measured::error(&e)
            .downcast_ref::<crate::run::safety::Refused>()
            .is_some());
    }
}
