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
    pub id: crate::domain::ids::WebinarId,
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

/// The body of one reminder: exactly the seed's twelve keys, in this
/// order (the serialisation order). Its schema is the webhook's in the
/// OpenAPI document.
#[derive(Serialize, schemars::JsonSchema, Debug)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "ReminderPayload")]
pub struct Payload<'a> {
    /// The participant's name.
    name: &'a str,
    /// The participant's email.
    email: &'a str,
    /// The participant's phone, `""` when unknown.
    phone: &'a str,
    /// The participant's UTC offset at the webinar's start, `±HH:MM`.
    timezone: Option<String>,
    /// The webinar's title.
    webinar: &'a str,
    webinar_id: &'a str,
    webinar_link: &'a str,
    /// UTC, with milliseconds: `2024-03-15T10:00:00.000Z`.
    webinar_from_time: String,
    /// UTC, with milliseconds.
    webinar_to_time: String,
    /// The start shifted by the creator's offset, still written with `Z`
    /// (a quirk of the original, kept on purpose).
    webinar_from_time_in_creator_timezone: String,
    /// The creator's UTC offset at the webinar's start, `±HH:MM`.
    creator_timezone: Option<String>,
    /// The webinar's mango (product) names joined with `", "`.
    mangoes: String,
}

/// Whether tminus accepts `t` as a webinar's time: from 1970 up to the end
/// of 9998. Outside it, a time shown in the API or the payload (shifted by
/// up to a day's offset for the creator's zone) would need a five-digit or
/// negative year, which RFC 3339 cannot write: `+10000-01-01T…` parses
/// nowhere.
pub fn in_range(t: DateTime<Utc>) -> bool {
    let year = chrono::Datelike::year(&t);
    (1970..=9998).contains(&year)
}

/// `2024-03-15T10:00:00.000Z`.
pub fn iso_millis(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
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
        webinar_id: webinar.id.as_str(),
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
            id: crate::domain::ids::Id::trusted("634fc35ddaf58580e2418c40".into()),
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

    use proptest::prelude::*;
    use serde_json::Value;

    /// A JSON object's entries in the order written (serde_json's own map
    /// sorts them unless a feature says otherwise).
    struct Ordered(Vec<(String, Value)>);

    impl<'de> serde::Deserialize<'de> for Ordered {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Ordered;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut m: A,
                ) -> Result<Ordered, A::Error> {
                    let mut entries = Vec::new();
                    while let Some(entry) = m.next_entry()? {
                        entries.push(entry);
                    }
                    Ok(Ordered(entries))
                }
            }
            d.deserialize_map(V)
        }
    }

    const KEYS: [&str; 12] = [
        "name",
        "email",
        "phone",
        "timezone",
        "webinar",
        "webinarId",
        "webinarLink",
        "webinarFromTime",
        "webinarToTime",
        "webinarFromTimeInCreatorTimezone",
        "creatorTimezone",
        "mangoes",
    ];

    /// Any text: control characters and NUL, any Unicode, sometimes long.
    fn text() -> impl Strategy<Value = String> {
        let c = prop_oneof![
            3 => any::<char>(),
            1 => prop::char::range('\0', '\x1f'),
            1 => prop::sample::select(vec!['"', '\\', '\u{7f}', '\u{2028}', '\u{10ffff}']),
        ];
        prop_oneof![
            4 => prop::collection::vec(c.clone(), 0..40),
            1 => prop::collection::vec(c, 1000..3000),
        ]
        .prop_map(String::from_iter)
    }

    fn zone() -> impl Strategy<Value = Option<Zone>> {
        let names: Vec<chrono_tz::Tz> = chrono_tz::TZ_VARIANTS.to_vec();
        prop::option::of(prop_oneof![
            (-(14 * 60 + 59)..=(14 * 60 + 59)).prop_map(|m: i32| Zone::Fixed(m * 60)),
            prop::sample::select(names).prop_map(Zone::Named),
        ])
    }

    /// Any instant tminus accepts, at millisecond precision, edges included.
    fn instant() -> impl Strategy<Value = DateTime<Utc>> {
        let first = DateTime::parse_from_rfc3339("1970-01-01T00:00:00Z")
            .unwrap()
            .timestamp_millis();
        let last = DateTime::parse_from_rfc3339("9998-12-31T23:59:59.999Z")
            .unwrap()
            .timestamp_millis();
        prop_oneof![
            4 => first..=last,
            1 => prop::sample::select(vec![first, last]),
        ]
        .prop_map(|ms| DateTime::from_timestamp_millis(ms).unwrap())
    }

    fn webinar() -> impl Strategy<Value = WebinarFacts> {
        let words = prop::collection::vec(text(), 0..4);
        (text(), text(), text(), instant(), instant(), zone(), words).prop_map(
            |(id, title, link, from_time, to_time, creator_zone, mangoes)| WebinarFacts {
                id: crate::domain::ids::Id::trusted(id),
                title,
                link,
                from_time,
                to_time,
                creator_zone,
                mangoes,
            },
        )
    }

    fn participant() -> impl Strategy<Value = ParticipantFacts> {
        (text(), text(), text(), zone()).prop_map(|(name, email, phone, zone)| ParticipantFacts {
            name,
            email,
            phone,
            zone,
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn the_payload_is_the_twelve_keys_in_order_and_round_trips(
            w in webinar(),
            p in participant(),
        ) {
            let body = render(&w, &p);
            let Ordered(entries) = serde_json::from_slice(&body).expect("valid JSON");
            let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
            prop_assert_eq!(&keys[..], &KEYS[..]);
            let v: std::collections::HashMap<String, Value> = entries.into_iter().collect();
            let s = |k: &str| v[k].as_str().map(str::to_owned);
            let time = |k: &str| DateTime::parse_from_rfc3339(&s(k).unwrap()).map(|t| t.to_utc());
            prop_assert_eq!(s("name"), Some(p.name.clone()));
            prop_assert_eq!(s("email"), Some(p.email.clone()));
            prop_assert_eq!(s("phone"), Some(p.phone.clone()));
            prop_assert_eq!(s("webinar"), Some(w.title.clone()));
            prop_assert_eq!(s("webinarId"), Some(w.id.to_string()));
            prop_assert_eq!(s("webinarLink"), Some(w.link.clone()));
            prop_assert_eq!(s("mangoes"), Some(w.mangoes.join(", ")));
            prop_assert_eq!(time("webinarFromTime"), Ok(w.from_time));
            prop_assert_eq!(time("webinarToTime"), Ok(w.to_time));
            let creator = w.creator_zone.as_ref().map(|z| z.offset_at(w.from_time));
            let shifted = w.from_time + Duration::seconds(creator.unwrap_or(0).into());
            prop_assert_eq!(time("webinarFromTimeInCreatorTimezone"), Ok(shifted));
            let offset = |z: &Option<Zone>| z.as_ref().map(|z| format_offset(z.offset_at(w.from_time)));
            prop_assert_eq!(s("creatorTimezone"), offset(&w.creator_zone));
            prop_assert_eq!(s("timezone"), offset(&p.zone));
            for k in ["creatorTimezone", "timezone"] {
                if let Some(o) = s(k) {
                    prop_assert!(o.parse::<Zone>().is_ok(), "{} = {}", k, o);
                }
            }
        }
    }
}
