//! A view written with its keys in alphabetical order, at every depth.
//! The lists of webinars always showed their entries so (they were built
//! as `serde_json` maps, which sort), while a single webinar shows the
//! record's order; this keeps both exactly as they were.

use schemars::JsonSchema;
use serde::{Serialize, Serializer};

/// `T`, serialised with sorted keys; its schema is `T`'s.
#[derive(JsonSchema, Debug)]
#[schemars(transparent)]
pub struct Sorted<T>(pub T);

impl<T: Serialize> Serialize for Sorted<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // serde_json's map is a BTreeMap here (no `preserve_order`).
        serde_json::to_value(&self.0)
            .map_err(serde::ser::Error::custom)?
            .serialize(s)
    }
}
