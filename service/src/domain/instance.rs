//! The name a running instance goes by in leases (`locked_by`) and in the
//! instances table ([`InstanceId`]), unique per start. Not an API id:
//! nothing parses one from a request, so it has no shape to check.

/// A running instance's name in leases (`locked_by`) and in the instances
/// table: its process id and a fresh entity id, unique per start. Not an
/// API id: nothing parses one from a request.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct InstanceId(String);

impl InstanceId {
    /// This start's name.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self(format!("{}-{}", std::process::id(), super::ids::new_id()))
    }

    /// A name given as is (a test's, or one the store wrote).
    pub fn named(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The name's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for InstanceId {
    fn from(s: &str) -> Self {
        Self::named(s)
    }
}

impl From<String> for InstanceId {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl super::ids::Id for InstanceId {
    fn as_str(&self) -> &str {
        &self.0
    }

    fn trusted(s: String) -> Self {
        Self(s)
    }
}

impl std::fmt::Display for InstanceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Debug for InstanceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.0, f)
    }
}
