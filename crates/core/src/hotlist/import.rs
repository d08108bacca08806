//! Hot-list files (SPEC R3.1): CSV, the California DOJ fixed-width files
//! (svs, sfr, slr) and NCIC fixed-width extracts, parsed into checked
//! entries plus a numbered list of the lines that could not be used.
//!
//! A bad line never stops the parse: it is reported by number and the
//! rest goes on. What does refuse the whole file is evidence that the file
//! is incomplete (a DOJ file without its `TOTAL RECORD` footer, or whose
//! count disagrees): an import replaces the source's entries, and a cut
//! file would silently drop stolen vehicles from the list.

use serde::Serialize;

use super::{check_pattern, clean_text, import_expiry, EntryDraft, ListKind};
use crate::region::Region;

/// The file formats a list can be imported from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Csv,
    Doj,
    Ncic,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "csv" => Some(Format::Csv),
            "doj" => Some(Format::Doj),
            "ncic" => Some(Format::Ncic),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Doj => "doj",
            Format::Ncic => "ncic",
        }
    }

    /// The format of a file sent without one named: by its name where it
    /// tells (`.csv`; DOJ's `svs`, `sfr`, `slr`; `ncic`), else by its
    /// content (a header naming `plate` is CSV, a `TOTAL RECORD` footer is
    /// DOJ, anything else is read as NCIC).
    pub fn sniff(file_name: Option<&str>, text: &str) -> Format {
        if let Some(name) = file_name.map(str::to_ascii_lowercase) {
            if name.ends_with(".csv") {
                return Format::Csv;
            }
            if name.contains("ncic") {
                return Format::Ncic;
            }
            if ["svs", "sfr", "slr"].iter().any(|k| name.contains(k)) {
                return Format::Doj;
            }
        }
        let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        if first
            .to_ascii_lowercase()
            .split(',')
            .any(|h| h.trim().trim_matches('"') == "plate")
        {
            return Format::Csv;
        }
        let footer = text
            .lines()
            .rev()
            .filter(|l| !l.trim().is_empty())
            .take(2)
            .any(|l| l.to_ascii_uppercase().contains("TOTAL RECORD"));
        if footer {
            Format::Doj
        } else {
            Format::Ncic
        }
    }
}

/// Longest line accepted; longer ones are reported, not read.
pub const MAX_LINE_BYTES: usize = 4_096;
/// Problems listed one by one in a report; beyond this only counted.
pub const MAX_LISTED_PROBLEMS: usize = 1_000;

/// What a parse needs to know about the list.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    pub kind: ListKind,
    pub fuzzy: bool,
    pub retention_days: i64,
    pub now_ms: i64,
    /// The latest expiry an entry may get (see
    /// [`super::manual_expiry_limit`]): a file's own later dates are cut.
    pub max_expiry_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineProblem {
    pub line: usize,
    pub message: String,
}

#[derive(Debug, Default)]
pub struct Parsed {
    /// Checked entries with their line numbers (1-based), first
    /// occurrence of each plate and state only.
    pub entries: Vec<(usize, EntryDraft)>,
    /// Lines that could not be used (at most [`MAX_LISTED_PROBLEMS`]).
    pub problems: Vec<LineProblem>,
    /// All unusable lines, listed or not.
    pub invalid: usize,
    /// Lines repeating an earlier plate and state.
    pub duplicates: usize,
    /// Why the whole file is refused, if it is.
    pub refused: Option<String>,
}

impl Parsed {
    fn problem(&mut self, line: usize, message: impl Into<String>) {
        self.invalid += 1;
        if self.problems.len() < MAX_LISTED_PROBLEMS {
            self.problems.push(LineProblem {
                line,
                message: message.into(),
            });
        }
    }
}

/// Takes each record (or why its line is unusable) with its line number.
type Accept<'a> = dyn FnMut(&mut Parsed, usize, Result<Record, String>) + 'a;

/// One record as read from a file, before checking.
#[derive(Default)]
struct Record {
    plate: String,
    state: Option<String>,
    reason: Option<String>,
    case_number: Option<String>,
    expires_at_ms: Option<i64>,
    details: Vec<(&'static str, String)>,
}

/// Parses a file's text in `format`.
pub fn parse(format: Format, text: &str, ctx: &Context) -> Parsed {
    let mut out = Parsed::default();
    let mut accept = |out: &mut Parsed, line: usize, rec: Result<Record, String>| {
        let rec = match rec {
            Ok(r) => r,
            Err(msg) => return out.problem(line, msg),
        };
        match check_record(rec, ctx) {
            Ok(draft) => out.entries.push((line, draft)),
            Err(msg) => out.problem(line, msg),
        }
    };
    match format {
        Format::Csv => parse_csv(text, &mut out, &mut accept),
        Format::Doj => parse_doj(text, &mut out, &mut accept),
        Format::Ncic => {
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                accept(&mut out, i + 1, ncic_record(line));
            }
        }
    }
    drop_duplicates(&mut out);
    out
}

/// Keeps the first line of each plate and state; counts the others.
/// (Sorting indexes costs no allocation per entry, unlike a set of keys.)
fn drop_duplicates(out: &mut Parsed) {
    let mut order: Vec<usize> = (0..out.entries.len()).collect();
    let key = |i: usize| {
        let d = &out.entries[i].1;
        (d.pattern.as_str(), d.state.map(|s| s.code()), i)
    };
    order.sort_unstable_by(|&a, &b| key(a).cmp(&key(b)));
    let mut dup = vec![false; out.entries.len()];
    for w in order.windows(2) {
        let (a, b) = (key(w[0]), key(w[1]));
        if (a.0, a.1) == (b.0, b.1) {
            dup[w[1]] = true;
        }
    }
    let before = out.entries.len();
    let mut i = 0;
    out.entries.retain(|_| {
        i += 1;
        !dup[i - 1]
    });
    out.duplicates += before - out.entries.len();
}

fn check_record(rec: Record, ctx: &Context) -> Result<EntryDraft, String> {
    let pattern = check_pattern(&rec.plate, ctx.fuzzy).map_err(|e| e.to_string())?;
    let state = match rec
        .state
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(s) => {
            Some(Region::parse(s).ok_or_else(|| format!("state: {s:?} is not a known code"))?)
        }
    };
    let reason = match rec.reason {
        Some(r) if !r.trim().is_empty() => clean_text(&r, "reason").map_err(|e| e.to_string())?,
        _ => ctx.kind.default_reason().to_string(),
    };
    if reason.chars().count() > super::MAX_REASON_CHARS {
        return Err(super::EntryError::Reason.to_string());
    }
    let case_number = match rec.case_number {
        Some(c) if !c.trim().is_empty() => {
            let c = clean_text(&c, "case_number").map_err(|e| e.to_string())?;
            if c.chars().count() > super::MAX_CASE_CHARS {
                return Err(super::EntryError::CaseNumber.to_string());
            }
            Some(c)
        }
        _ => None,
    };
    let latest = import_expiry(ctx.now_ms, ctx.retention_days).min(ctx.max_expiry_ms);
    let expires_at_ms = match rec.expires_at_ms {
        Some(t) if t <= ctx.now_ms => return Err("expires_at: already past".into()),
        Some(t) => t.min(latest),
        None => latest,
    };
    let mut details = Vec::new();
    for (k, v) in rec.details {
        // Fixed-width fields are already trimmed and printable.
        if v.chars().any(char::is_control) {
            return Err(format!("{k}: contains control characters"));
        }
        let v = if v.trim().len() == v.len() {
            v
        } else {
            v.trim().to_string()
        };
        if v.chars().count() > 64 {
            return Err(format!("{k}: longer than 64 characters"));
        }
        if !v.is_empty() {
            details.push((k, v));
        }
    }
    Ok(EntryDraft {
        pattern,
        state,
        reason,
        case_number,
        expires_at_ms,
        details,
    })
}

/// CSV with a header naming the columns: `plate` (required), `state`,
/// `reason`, `case_number`, `expires_at` (RFC 3339 or YYYY-MM-DD), and
/// any of `year`, `make`, `model`, `color`, `county`, `date_of_loss`,
/// `source` kept as details. Other columns are ignored.
///
/// Each line is one record: a quoted field may hold commas but not a line
/// break, so one broken quote spoils its own line, never the rest of the
/// file.
fn parse_csv(text: &str, out: &mut Parsed, accept: &mut Accept<'_>) {
    let mut lines = text.lines().enumerate();
    let header = loop {
        match lines.next() {
            None => {
                out.refused = Some("the file is empty: no header line".into());
                return;
            }
            Some((_, l)) if l.trim().is_empty() => continue,
            Some((i, l)) => match split_csv_line(l.trim_start_matches('\u{feff}')) {
                Ok(h) => break h,
                Err(e) => {
                    out.refused = Some(format!("line {}: the header cannot be read ({e})", i + 1));
                    return;
                }
            },
        }
    };
    let headers: Vec<String> = header
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let Some(plate_col) = col("plate") else {
        out.refused = Some("the header has no \"plate\" column".into());
        return;
    };
    let (state, reason, case, expires) = (
        col("state"),
        col("reason"),
        col("case_number"),
        col("expires_at"),
    );
    let detail_cols: Vec<(&'static str, usize)> = [
        "year",
        "make",
        "model",
        "color",
        "county",
        "date_of_loss",
        "source",
    ]
    .iter()
    .filter_map(|n| col(n).map(|i| (*n, i)))
    .collect();
    for (i, line) in lines {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        if line.len() > MAX_LINE_BYTES {
            accept(out, n, Err(format!("longer than {MAX_LINE_BYTES} bytes")));
            continue;
        }
        let fields = match split_csv_line(line) {
            Ok(f) => f,
            Err(e) => {
                accept(out, n, Err(e));
                continue;
            }
        };
        let get = |i: Option<usize>| i.and_then(|i| fields.get(i)).map(|s| s.trim().to_string());
        let rec = (|| {
            let expires_at_ms = match get(expires).filter(|s| !s.is_empty()) {
                None => None,
                Some(s) => Some(parse_day_or_time(&s).ok_or_else(|| {
                    format!("expires_at: {s:?} is neither RFC 3339 nor YYYY-MM-DD")
                })?),
            };
            Ok(Record {
                plate: get(Some(plate_col)).unwrap_or_default(),
                state: get(state),
                reason: get(reason),
                case_number: get(case),
                expires_at_ms,
                details: detail_cols
                    .iter()
                    .filter_map(|(name, i)| get(Some(*i)).map(|v| (*name, v)))
                    .collect(),
            })
        })();
        accept(out, n, rec);
    }
}

/// Splits one CSV line (RFC 4180 quoting: `"a, b"`, `""` for a quote).
fn split_csv_line(line: &str) -> Result<Vec<String>, String> {
    let line = line.trim_end_matches('\r');
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (false, '"') if at_start => {
                quoted = true;
                at_start = false;
            }
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => {
                quoted = false;
                // Only a separator (or the end) may follow a closing quote.
                match chars.peek() {
                    None | Some(',') => {}
                    Some(other) => {
                        return Err(format!("text {other:?} after a closing quote"));
                    }
                }
            }
            (false, ',') => {
                fields.push(std::mem::take(&mut field));
                at_start = true;
            }
            (_, c) => {
                field.push(c);
                if !c.is_whitespace() {
                    at_start = false;
                }
            }
        }
    }
    if quoted {
        return Err("a quoted field is not closed on its line".into());
    }
    fields.push(field);
    Ok(fields)
}

/// California DOJ files: a header line, fixed-width records (plate
/// [0:8], state [8:10], county [10:12], date of loss [12:]), and a footer
/// line holding `TOTAL RECORD` and the record count.
fn parse_doj(text: &str, out: &mut Parsed, accept: &mut Accept<'_>) {
    let mut records = 0usize;
    let mut footer: Option<(usize, Option<usize>)> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if n == 1 {
            continue; // the header
        }
        if line.trim().is_empty() {
            continue;
        }
        if line.to_ascii_uppercase().contains("TOTAL RECORD") {
            let digits: String = line.chars().filter(|c| c.is_ascii_digit()).collect();
            footer = Some((n, digits.parse().ok()));
            continue;
        }
        if let Some((f, _)) = footer {
            accept(
                out,
                n,
                Err(format!("a record after the footer on line {f}")),
            );
            continue;
        }
        records += 1;
        accept(out, n, doj_record(line));
    }
    match footer {
        None => {
            out.refused = Some(
                "no TOTAL RECORD footer: the file looks cut short, so it does not replace the list"
                    .into(),
            )
        }
        Some((line, Some(count))) if count != records => {
            out.refused = Some(format!(
                "line {line}: the footer counts {count} records but the file holds {records}; \
                 the file looks incomplete, so it does not replace the list"
            ))
        }
        Some((line, None)) => {
            out.refused = Some(format!("line {line}: the footer gives no record count"))
        }
        Some(_) => {}
    }
}

fn doj_record(line: &str) -> Result<Record, String> {
    let b = fixed_width(line, 8)?;
    let field = |a: usize, z: Option<usize>| -> String {
        let end = z.unwrap_or(b.len()).min(b.len());
        b.get(a.min(end)..end)
            .map(|s| String::from_utf8_lossy(s).trim().to_string())
            .unwrap_or_default()
    };
    let details = vec![
        ("county", field(10, Some(12))),
        ("date_of_loss", field(12, None)),
    ];
    Ok(Record {
        plate: field(0, Some(8)),
        state: Some(field(8, Some(10))),
        details,
        ..Record::default()
    })
}

/// NCIC extracts: list type [0:1], incident date [19:27], plate [27:37],
/// state [37:39], vehicle year [45:49], make [49:53], model [53:56],
/// color [58:].
fn ncic_record(line: &str) -> Result<Record, String> {
    let b = fixed_width(line, 39)?;
    let field = |a: usize, z: Option<usize>| -> String {
        let end = z.unwrap_or(b.len()).min(b.len());
        b.get(a.min(end)..end)
            .map(|s| String::from_utf8_lossy(s).trim().to_string())
            .unwrap_or_default()
    };
    Ok(Record {
        plate: field(27, Some(37)),
        state: Some(field(37, Some(39))),
        details: vec![
            ("ncic_type", field(0, Some(1))),
            ("incident_date", field(19, Some(27))),
            ("year", field(45, Some(49))),
            ("make", field(49, Some(53))),
            ("model", field(53, Some(56))),
            ("color", field(58, None)),
        ],
        ..Record::default()
    })
}

/// A fixed-width line's bytes, if it is printable ASCII of a usable length.
fn fixed_width(line: &str, min: usize) -> Result<&[u8], String> {
    let line = line.trim_end_matches('\r');
    if line.len() > MAX_LINE_BYTES {
        return Err(format!("longer than {MAX_LINE_BYTES} bytes"));
    }
    if !line.bytes().all(|c| (0x20..0x7F).contains(&c)) {
        return Err("holds characters other than printable ASCII".into());
    }
    if line.len() < min {
        return Err(format!(
            "{} characters; a record needs at least {min}",
            line.len()
        ));
    }
    Ok(line.as_bytes())
}

/// RFC 3339, or a calendar day (the end of that day, UTC).
fn parse_day_or_time(s: &str) -> Option<i64> {
    if let Ok(ms) = crate::read::parse_time_ms("expires_at", s) {
        return Some(ms);
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let d = time::Date::parse(s, &fmt).ok()?;
    let end = d.with_hms(23, 59, 59).ok()?.assume_utc();
    Some((end.unix_timestamp_nanos() / 1_000_000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_000_000_000;

    fn ctx() -> Context {
        Context {
            kind: ListKind::StolenVehicle,
            fuzzy: false,
            retention_days: 7,
            now_ms: NOW,
            max_expiry_ms: NOW + 7 * 86_400_000,
        }
    }

    fn plates(p: &Parsed) -> Vec<&str> {
        p.entries.iter().map(|(_, e)| e.pattern.as_str()).collect()
    }

    #[test]
    fn csv_with_bad_lines_reports_them_by_number() {
        let text = "plate,state,reason,case_number,make\n\
                    7ABC123,CA,stolen,24-1,HOND\n\
                    *,CA,too broad,,\n\
                    8XYZ999,ZZ,bad state,,\n\
                    \"unterminated,CA\n";
        let p = parse(Format::Csv, text, &ctx());
        assert_eq!(plates(&p), ["7ABC123"]);
        assert_eq!(p.entries[0].0, 2);
        assert_eq!(p.entries[0].1.details, [("make", "HOND".to_string())]);
        let lines: Vec<usize> = p.problems.iter().map(|x| x.line).collect();
        assert_eq!(lines, [3, 4, 5], "{:?}", p.problems);
        assert!(p.problems[2].message.contains("not closed"));
        assert!(p.problems[0].message.contains("plate"));
        assert!(p.problems[1].message.contains("state"));
        assert!(p.refused.is_none());
        let none = parse(Format::Csv, "tag,state\n7ABC123,CA\n", &ctx());
        assert!(none.refused.unwrap().contains("plate"));
    }

    #[test]
    fn csv_fields_split_like_rfc_4180() {
        assert_eq!(split_csv_line("a,b,,c").unwrap(), ["a", "b", "", "c"]);
        assert_eq!(
            split_csv_line("\"7ABC123\",\"stolen, 10851\",\"say \"\"hi\"\"\"").unwrap(),
            ["7ABC123", "stolen, 10851", "say \"hi\""]
        );
        assert!(split_csv_line("\"open,a").is_err());
        assert!(split_csv_line("\"a\"b,c").is_err());
        let text = "plate,reason\n\"broken,x\n7ABC123,after the broken line\n";
        let p = parse(Format::Csv, text, &ctx());
        assert_eq!(plates(&p), ["7ABC123"], "a broken quote spoils one line");
    }

    #[test]
    fn csv_expiry_is_capped_by_retention_and_duplicates_counted() {
        let text = "plate,expires_at\n7ABC123,2099-01-01\n7ABC123,\n6ABC123,2020-01-01\n";
        let p = parse(Format::Csv, text, &ctx());
        assert_eq!(plates(&p), ["7ABC123"]);
        assert_eq!(p.entries[0].1.expires_at_ms, NOW + 7 * 86_400_000);
        assert_eq!(p.entries[0].1.reason, "stolen vehicle");
        assert_eq!(p.duplicates, 1);
        assert_eq!(p.invalid, 1);
    }

    #[test]
    fn doj_files_need_their_footer() {
        let text = "SVS HEADER 20261121\n\
                    7ABC123 CA0120261101\n\
                    6TRJ244 CA19\n\
                    ?       CA0120261101\n\
                    TOTAL RECORDS: 3\n";
        let p = parse(Format::Doj, text, &ctx());
        assert_eq!(plates(&p), ["7ABC123", "6TRJ244"]);
        assert_eq!(p.problems.len(), 1);
        assert_eq!(p.problems[0].line, 4);
        assert!(p.refused.is_none());
        let d = &p.entries[0].1;
        assert_eq!(d.state, Region::parse("CA"));
        assert!(d
            .details
            .contains(&("date_of_loss", "20261101".to_string())));
        assert!(d.details.contains(&("county", "01".to_string())));

        let cut = "SVS HEADER\n7ABC123 CA0120261101\n";
        assert!(parse(Format::Doj, cut, &ctx()).refused.is_some());
        let wrong = "SVS HEADER\n7ABC123 CA0120261101\nTOTAL RECORD 2\n";
        assert!(parse(Format::Doj, wrong, &ctx())
            .refused
            .unwrap()
            .contains("counts 2"));
    }

    #[test]
    fn ncic_records_keep_the_vehicle() {
        let mut line = String::new();
        line.push('V'); // [0:1]
        line.push_str(&" ".repeat(18)); // [1:19]
        line.push_str("20261015"); // [19:27]
        line.push_str("4GHJ772   "); // [27:37]
        line.push_str("NV"); // [37:39]
        line.push_str(&" ".repeat(6)); // [39:45]
        line.push_str("2018"); // [45:49]
        line.push_str("TOYT"); // [49:53]
        line.push_str("CAM"); // [53:56]
        line.push_str("  "); // [56:58]
        line.push_str("BLK"); // [58:]
        let text = format!("{line}\nshort line\n\n{}\n", "é".repeat(30));
        let p = parse(Format::Ncic, &text, &ctx());
        assert_eq!(plates(&p), ["4GHJ772"]);
        let d = &p.entries[0].1;
        assert_eq!(d.state, Region::parse("NV"));
        for kv in [
            ("year", "2018"),
            ("make", "TOYT"),
            ("model", "CAM"),
            ("color", "BLK"),
        ] {
            assert!(d.details.contains(&(kv.0, kv.1.to_string())), "{kv:?}");
        }
        let lines: Vec<usize> = p.problems.iter().map(|x| x.line).collect();
        assert_eq!(lines, [2, 4]);
    }

    #[test]
    fn formats_are_told_by_name_or_content() {
        assert_eq!(Format::sniff(Some("SVS_20261122.TXT"), ""), Format::Doj);
        assert_eq!(Format::sniff(Some("list.csv"), ""), Format::Csv);
        assert_eq!(Format::sniff(Some("ncic-extract.dat"), ""), Format::Ncic);
        assert_eq!(
            Format::sniff(None, "\nPlate,State\n7ABC123,CA\n"),
            Format::Csv
        );
        assert_eq!(
            Format::sniff(None, "HDR\n7ABC123 CA01\nTOTAL RECORD 1\n\n"),
            Format::Doj
        );
        assert_eq!(Format::sniff(None, "V   …"), Format::Ncic);
    }

    #[test]
    fn hostile_input_never_panics() {
        let junk = [
            "",
            "\n\n\n",
            "\u{0}\u{0}\u{0}",
            "plate\n\"",
            "TOTAL RECORD\n",
            &"A".repeat(100_000),
            "plate\n7ABC123\u{0}\n",
        ];
        for text in junk {
            for f in [Format::Csv, Format::Doj, Format::Ncic] {
                let _ = parse(f, text, &ctx());
            }
        }
        let many: String = (0..5_000).map(|_| "x\n").collect();
        let p = parse(Format::Ncic, &many, &ctx());
        assert_eq!(p.invalid, 5_000);
        assert_eq!(p.problems.len(), MAX_LISTED_PROBLEMS);
    }
}
