//! `tminus admin participants import`: a CSV file registered through the
//! bulk API in chunks, read as it goes (never held whole). The bulk API is
//! all or nothing and names the first bad entry (`[3].email`): a refused
//! chunk is sent again without that row, which is reported with its line,
//! so one bad row costs one more request, never the rest of its chunk.

use super::client::{Client, Refused};
use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::path::Path;

/// What an import did.
#[derive(Debug, Default, Serialize)]
pub struct Imported {
    /// Participants newly registered.
    pub created: u64,
    /// Rows whose email was registered already.
    pub existing: u64,
    /// Rows not registered, with why.
    pub refused: Vec<RefusedRow>,
}

/// A row that was not registered.
#[derive(Debug, Serialize)]
pub struct RefusedRow {
    /// The row's line in the file (the header is line 1).
    pub line: u64,
    /// The column at fault, when the API named one.
    pub field: Option<String>,
    /// The API's error code, or `bad_csv` for a row that cannot be read.
    pub code: String,
    pub message: String,
}

/// One row to send, with its line for the report.
struct Row {
    line: u64,
    entry: Value,
}

/// Which column holds what; `phone` and `timezone` are optional.
struct Columns {
    name: usize,
    email: usize,
    phone: Option<usize>,
    timezone: Option<usize>,
}

impl Columns {
    fn of(headers: &csv::StringRecord) -> anyhow::Result<Self> {
        let find = |want: &str| {
            headers
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(want))
        };
        let need =
            |want: &str| find(want).with_context(|| format!("the CSV has no `{want}` column"));
        Ok(Self {
            name: need("name")?,
            email: need("email")?,
            phone: find("phone"),
            timezone: find("timezone"),
        })
    }

    /// The bulk API's entry for one record; empty optional cells are left out.
    fn entry(&self, rec: &csv::StringRecord) -> Value {
        let mut o = Map::new();
        let get = |i: usize| rec.get(i).unwrap_or("").trim().to_owned();
        o.insert("name".into(), get(self.name).into());
        o.insert("email".into(), get(self.email).into());
        for (key, col) in [("phone", self.phone), ("timezone", self.timezone)] {
            if let Some(v) = col.map(get).filter(|v| !v.is_empty()) {
                o.insert(key.into(), v.into());
            }
        }
        Value::Object(o)
    }
}

/// Registers every row of `file` for `webinar`, `chunk` rows a request.
pub async fn run(
    client: &Client,
    webinar: &str,
    file: &Path,
    chunk: usize,
    show: bool,
) -> anyhow::Result<Imported> {
    let size = std::fs::metadata(file)
        .with_context(|| format!("reading {}", file.display()))?
        .len();
    // Flexible: a row may stop before its optional cells (`Ann,ann@x.com`).
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(file)
        .with_context(|| format!("reading {}", file.display()))?;
    let columns = Columns::of(reader.headers()?)?;
    let bar = if show {
        ProgressBar::new(size)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(ProgressStyle::with_template(
        "{bar:40} {bytes}/{total_bytes} {msg} ({eta})",
    )?);
    let path = format!("/webinars/{webinar}/participants/bulk");
    let mut done = Imported::default();
    let mut record = csv::StringRecord::new();
    loop {
        let mut rows = Vec::with_capacity(chunk);
        let mut more = true;
        while rows.len() < chunk {
            match reader.read_record(&mut record) {
                Ok(false) => {
                    more = false;
                    break;
                }
                Ok(true) => rows.push(Row {
                    line: record.position().map_or(0, |p| p.line()),
                    entry: columns.entry(&record),
                }),
                Err(e) if e.is_io_error() => return Err(e.into()),
                Err(e) => done.refused.push(RefusedRow {
                    line: e.position().map_or(0, |p| p.line()),
                    field: None,
                    code: "bad_csv".into(),
                    message: e.to_string(),
                }),
            }
        }
        send(client, &path, rows, &mut done).await?;
        bar.set_position(reader.position().byte());
        bar.set_message(format!(
            "{} registered, {} refused",
            done.created + done.existing,
            done.refused.len()
        ));
        if !more {
            bar.finish_and_clear();
            done.refused.sort_by_key(|r| r.line);
            return Ok(done);
        }
    }
}

/// Sends one chunk, dropping each entry the API refuses, until the rest
/// is registered.
async fn send(
    client: &Client,
    path: &str,
    mut rows: Vec<Row>,
    done: &mut Imported,
) -> anyhow::Result<()> {
    while !rows.is_empty() {
        let body = json!(rows.iter().map(|r| &r.entry).collect::<Vec<_>>());
        let err = match client.post(path, &body).await {
            Ok(counts) => {
                done.created += counts["created"].as_u64().unwrap_or(0);
                done.existing += counts["existing"].as_u64().unwrap_or(0);
                return Ok(());
            }
            Err(e) => e,
        };
        let Some((refusal, (i, field))) = err
            .downcast_ref::<Refused>()
            .and_then(|r| Some((r, entry_at(r.field.as_deref()?)?)))
        else {
            return Err(err);
        };
        if i >= rows.len() {
            bail!("the API refused entry {i} of {}: {refusal}", rows.len());
        }
        let row = rows.remove(i);
        done.refused.push(RefusedRow {
            line: row.line,
            field,
            code: refusal.code.clone(),
            message: refusal.message.clone(),
        });
    }
    Ok(())
}

/// The entry and the field a bulk refusal names: `[3].email` is (3, email).
fn entry_at(field: &str) -> Option<(usize, Option<String>)> {
    let (index, rest) = field.strip_prefix('[')?.split_once(']')?;
    let field = rest.strip_prefix('.').filter(|f| !f.is_empty());
    Some((index.parse().ok()?, field.map(str::to_owned)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_its_entry_and_field() {
        assert_eq!(entry_at("[3].email"), Some((3, Some("email".into()))));
        assert_eq!(entry_at("[12]"), Some((12, None)));
        assert_eq!(entry_at("participants"), None);
        assert_eq!(entry_at("[x].email"), None);
    }

    #[test]
    fn columns_are_found_by_name_and_empty_optional_cells_left_out() {
        let headers = csv::StringRecord::from(vec!["Email", "timezone", "name"]);
        let c = Columns::of(&headers).unwrap();
        let rec = csv::StringRecord::from(vec![" a@example.com ", "", "Ann"]);
        assert_eq!(
            c.entry(&rec),
            json!({"name": "Ann", "email": "a@example.com"})
        );
        let missing = Columns::of(&csv::StringRecord::from(vec!["name"]));
        assert!(missing.err().unwrap().to_string().contains("`email`"));
    }
}
