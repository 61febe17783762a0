//! The vocabulary of tminus, parsed once at the edge and trusted inside:
//! ids, reminder offsets, time zones, hook URLs, event names, when a webinar
//! may be, and the payload a receiver gets. Nothing here does I/O.

pub mod event;
pub mod hook_url;
pub mod ids;
pub mod instance;
pub mod offset;
pub mod payload;
pub mod span;
pub mod status;
pub mod timezone;
pub mod verdict;

pub use event::Event;
pub use hook_url::HookUrl;
pub use offset::ReminderOffset;
pub use status::{DeliveryStatus, ReminderStatus, Status, SubscriptionStatus, WebinarStatus};
pub use timezone::Zone;
pub use verdict::Verdict;
