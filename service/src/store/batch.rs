//! A batch of participants to register, packed: each participant is one
//! allocation holding its four fields end to end, plus where they end. A
//! bulk request holds up to 200 000 of them; as [`NewParticipant`]s (four
//! strings each, a 96-byte record) they took about 180 bytes a participant,
//! packed about 110, and a bulk's peak memory follows.

use super::NewParticipant;

/// One participant to register, packed.
#[derive(Clone, Debug)]
pub struct PackedParticipant {
    /// Name, email, phone and time zone, end to end.
    text: Box<str>,
    /// Where the name, the email and the phone end in `text`.
    ends: [u32; 3],
}

/// A participant of a batch, as the store reads it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParticipantRef<'a> {
    pub name: &'a str,
    pub email: &'a str,
    pub phone: &'a str,
    pub timezone: Option<&'a str>,
}

impl PackedParticipant {
    /// Packs one participant's fields.
    pub fn new(name: &str, email: &str, phone: &str, timezone: Option<&str>) -> Self {
        let tz = timezone.unwrap_or("");
        let mut text = String::with_capacity(name.len() + email.len() + phone.len() + tz.len());
        let mut ends = [0u32; 3];
        for (end, part) in ends.iter_mut().zip([name, email, phone]) {
            text.push_str(part);
            *end = u32::try_from(text.len()).expect("a participant's fields fit in 4 GiB");
        }
        text.push_str(tz);
        Self {
            text: text.into_boxed_str(),
            ends,
        }
    }

    /// The participant's fields. An empty time zone is none: a given one
    /// is never empty.
    pub fn get(&self) -> ParticipantRef<'_> {
        let [a, b, c] = self.ends.map(|e| e as usize);
        let tz = &self.text[c..];
        ParticipantRef {
            name: &self.text[..a],
            email: &self.text[a..b],
            phone: &self.text[b..c],
            timezone: (!tz.is_empty()).then_some(tz),
        }
    }
}

impl From<&NewParticipant> for PackedParticipant {
    fn from(p: &NewParticipant) -> Self {
        Self::new(&p.name, &p.email, &p.phone, p.timezone.as_deref())
    }
}

/// Participants to register in one call, in the order given.
#[derive(Clone, Debug, Default)]
pub struct NewParticipants(Vec<PackedParticipant>);

impl NewParticipants {
    /// How many participants the batch holds.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the batch holds none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `i`th participant given.
    pub fn get(&self, i: usize) -> ParticipantRef<'_> {
        self.0[i].get()
    }

    /// Every participant, in the order given.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = ParticipantRef<'_>> {
        self.0.iter().map(PackedParticipant::get)
    }
}

impl From<Vec<PackedParticipant>> for NewParticipants {
    fn from(v: Vec<PackedParticipant>) -> Self {
        Self(v)
    }
}

impl From<Vec<NewParticipant>> for NewParticipants {
    fn from(v: Vec<NewParticipant>) -> Self {
        Self(v.iter().map(PackedParticipant::from).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_come_back_as_packed() {
        let p = PackedParticipant::new("Jöhn", "j@x.io", "", Some("+05:30"));
        assert_eq!(
            p.get(),
            ParticipantRef {
                name: "Jöhn",
                email: "j@x.io",
                phone: "",
                timezone: Some("+05:30")
            }
        );
        let q = PackedParticipant::new("", "e@x.io", "12", None);
        assert_eq!(
            (q.get().name, q.get().phone, q.get().timezone),
            ("", "12", None)
        );
        let batch = NewParticipants::from(vec![p, q]);
        let emails: Vec<&str> = batch.iter().map(|p| p.email).collect();
        assert_eq!(emails, ["j@x.io", "e@x.io"]);
        assert_eq!(std::mem::size_of::<PackedParticipant>(), 32);
    }
}
