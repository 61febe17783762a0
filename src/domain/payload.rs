//! The body a receiver gets: exactly the seed's twelve keys, in the seed's
//! order, times as UTC ISO 8601 with milliseconds and `Z`. Offsets are worked
//! out here, at send time, from the zones in force at the webinar's start.

use super::timezone::format_offset;
use super::Zone;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::Serialize;

/// What the payload needs of a webinar; one per webinar per batch, shared by
/// all of its participants' payloads.
#[derive(Clone, Debug)]
pub struct WebinarFacts {
    pub id: String,
    pub title: String,
    pub link: String,
    pub from_time: DateTime<Utc>,
    pub to_time: DateTime<Utc>,
    /// The creator's zone, `None` when the platform never gave one.
    pub creator_zone: Option<Zone>,
    /// Names of the products the webinar belongs to, in the webinar's order.
    pub mangoes: Vec<String>,
}

/// What the payload needs of a participant.
#[derive(Clone, Debug)]
pub struct ParticipantFacts {
    pub name: String,
    pub email: String,
    pub phone: String,
    pub zone: Option<Zone>,
}

/// The seed's payload. Field order is the serialisation order.
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
struct Payload<'a> {
    name: &'a str,
    email: &'a str,
    phone: &'a str,
    timezone: Option<String>,
    webinar: &'a str,
    webinar_id: &'a str,
    webinar_link: &'a str,
    webinar_from_time: String,
    webinar_to_time: String,
    webinar_from_time_in_creator_timezone: String,
    creator_timezone: Option<String>,
    mangoes: String,
}

/// `2024-03-15T10:00:00.000Z`.
pub fn iso_millis(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Serialises an instant as [`iso_millis`], so every time the API shows has
/// the payload's shape.
pub fn iso_ms<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&iso_millis(*t))
}

/// [`iso_ms`] for optional instants.
pub fn iso_ms_opt<S: serde::Serializer>(
    t: &Option<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => iso_ms(t, s),
        None => s.serialize_none(),
    }
}

/// Renders one participant's payload for one webinar.
pub fn render(webinar: &WebinarFacts, participant: &ParticipantFacts) -> Vec<u8> {
    let start = webinar.from_time;
    let creator_offset = webinar.creator_zone.as_ref().map(|z| z.offset_at(start));
    // The original platform shifts the instant by the creator's offset but
    // still writes `Z`; integrations parse it that way, so we keep the quirk.
    let shifted = start + Duration::seconds(creator_offset.unwrap_or(0).into());
    let body = Payload {
        name: &participant.name,
        email: &participant.email,
        phone: &participant.phone,
        timezone: participant
            .zone
            .as_ref()
            .map(|z| format_offset(z.offset_at(start))),
        webinar: &webinar.title,
        webinar_id: &webinar.id,
        webinar_link: &webinar.link,
        webinar_from_time: iso_millis(start),
        webinar_to_time: iso_millis(webinar.to_time),
        webinar_from_time_in_creator_timezone: iso_millis(shifted),
        creator_timezone: creator_offset.map(format_offset),
        mangoes: webinar.mangoes.join(", "),
    };
    serde_json::to_vec(&body).expect("payload serialises")
}

/// The seed's example participant and webinar, used by test events and the
/// golden test: rendering them must give the seed's example byte for byte.
pub fn seed_example() -> (WebinarFacts, ParticipantFacts) {
    let at = |s: &str| DateTime::parse_from_rfc3339(s).expect("valid").to_utc();
    (
        WebinarFacts {
            id: "634fc35ddaf58580e2418c40".into(),
            title: "Introduction to Digital Marketing".into(),
            link: "https://meet.google.com/abc-defg-hij".into(),
            from_time: at("2024-03-15T10:00:00Z"),
            to_time: at("2024-03-15T11:00:00Z"),
            creator_zone: Some(Zone::Fixed(19_800)),
            mangoes: vec!["Marketing Community".into(), "Digital Course Hub".into()],
        },
        ParticipantFacts {
            name: "John Doe".into(),
            email: "john@example.com".into(),
            phone: "1234567890".into(),
            zone: Some(Zone::Fixed(19_800)),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_and_daylight_saving() {
        let (mut w, mut p) = seed_example();
        p.zone = None;
        w.creator_zone = Some("Europe/Berlin".parse().unwrap());
        let v: serde_json::Value = serde_json::from_slice(&render(&w, &p)).unwrap();
        assert_eq!(v["timezone"], serde_json::Value::Null);
        // 15 March is winter time in Berlin: +01:00.
        assert_eq!(v["creatorTimezone"], "+01:00");
        assert_eq!(
            v["webinarFromTimeInCreatorTimezone"],
            "2024-03-15T11:00:00.000Z"
        );
        w.creator_zone = None;
        let v: serde_json::Value = serde_json::from_slice(&render(&w, &p)).unwrap();
        assert_eq!(v["creatorTimezone"], serde_json::Value::Null);
        assert_eq!(
            v["webinarFromTimeInCreatorTimezone"],
            "2024-03-15T10:00:00.000Z"
        );
    }
}
