//! The two sites and who is looking at one: [`Base`] (the operator's
//! dashboard or a creator's portal) and [`Viewer`] (a signed-in browser,
//! what it may see). The pages draw with them (`render`, `pages`); `viewer`
//! reads them from a request's cookie, `login` hands them out.

use super::session::{Scope, Session};
use crate::store::{CreatorId, Subscription};
use sha2::{Digest, Sha256};

/// Which of the two sites a page belongs to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Base {
    /// `/dashboard`: the operator's, everything.
    Dashboard,
    /// `/portal`: one creator's.
    Portal,
}

impl Base {
    /// Where the site's pages live (and the path of its cookies).
    pub fn path(self) -> &'static str {
        match self {
            Base::Dashboard => "/dashboard",
            Base::Portal => "/portal",
        }
    }

    /// The name of the site's session cookie.
    pub fn cookie(self) -> &'static str {
        match self {
            Base::Dashboard => "tminus_session",
            Base::Portal => "tminus_portal",
        }
    }

    /// The site a request's path belongs to.
    pub fn of(path: &str) -> Base {
        if path.starts_with("/portal") {
            Base::Portal
        } else {
            Base::Dashboard
        }
    }

    /// Whether a session of `scope` is one of this site's.
    pub(super) fn admits(self, scope: &Scope) -> bool {
        matches!(scope, Scope::Operator) == (self == Base::Dashboard)
    }
}

/// A signed-in browser on one of the two sites.
pub struct Viewer {
    pub session: Session,
    pub base: Base,
    /// The token this session's forms carry.
    pub csrf: String,
}

impl Viewer {
    /// The one creator this viewer may see, or `None` for everything.
    pub fn creator(&self) -> Option<&CreatorId> {
        match &self.session.scope {
            Scope::Operator => None,
            Scope::Creator(c) => Some(c),
        }
    }

    /// Whether `sub` is within this viewer's sight.
    pub fn sees(&self, sub: &Subscription) -> bool {
        self.creator().is_none_or(|c| *c == sub.creator_id)
    }

    /// Whether a form's token is this session's.
    pub fn checks(&self, csrf: &str) -> bool {
        Sha256::digest(csrf.as_bytes()) == Sha256::digest(self.csrf.as_bytes())
    }
}
