//! Changing the agency's policy (issue 22 finding 5): which fields a
//! replacement must carry, what changed, and which changes weaken a rule
//! and so need the administrator's explicit confirmation.
//!
//! A `PUT` of the policy used to fill every missing field with its
//! default, so `{}` quietly cut the access log's retention from 730 to 365
//! days and blanked the administrator's name. Here a replacement must name
//! every field ([`check_fields`]), a partial change is a merge patch
//! ([`merge_patch`]), and [`weakenings`] compares the old policy with the
//! new one against [`WEAKENING_RULES`]: a table, so an auditor can read
//! which changes count as weakening without reading code.
//!
//! Everything works on the policy's JSON form, so a field added to the
//! policy later is listed among the changes and required in a `PUT`
//! without touching this module; only a new *rule* needs a row here.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::policy::AgencyPolicy;

/// In which direction a change of a setting weakens a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Weaker {
    /// A smaller number is weaker (e.g. an access log kept fewer days).
    Lower,
    /// A larger number is weaker (e.g. more failed sign-ins before a lock).
    Higher,
    /// Any change: shorter loses data, longer keeps more about people.
    AnyChange,
    /// Emptying a text that was set (e.g. the administrator's name).
    Cleared,
    /// Changing or removing a value that was set (a case-number template:
    /// another template may accept more).
    ChangedOrCleared,
    /// A list that grew (accepts more), or was emptied (falls back to the
    /// built-in list, which accepts more than most agencies' own).
    GrownOrCleared,
    /// `0` means "never" (e.g. a lock that only an administrator lifts):
    /// from never to a time, or to a shorter time, is weaker.
    ShorterFromNever,
    /// A requirement turned off (`true` to `false`).
    SwitchedOff,
    /// A list that lost an entry (e.g. a role no longer held to a rule).
    Shrunk,
}

/// One row of [`WEAKENING_RULES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WeakeningRule {
    /// The setting, as a dotted path in the policy (`retention.reads_days`).
    pub field: &'static str,
    pub weaker_when: Weaker,
    /// Why such a change weakens the agency's rules.
    pub why: &'static str,
}

const fn rule(field: &'static str, weaker_when: Weaker, why: &'static str) -> WeakeningRule {
    WeakeningRule {
        field,
        weaker_when,
        why,
    }
}

/// Which changes weaken a rule. A change listed here is refused unless the
/// request confirms it by naming the field; it is logged with its old and
/// new values either way, and listed in the audit report.
pub const WEAKENING_RULES: &[WeakeningRule] = &[
    rule(
        "administrator_name",
        Weaker::Cleared,
        "the ALPR Administrator's name is no longer recorded and shown (R5.5)",
    ),
    rule(
        "administrator_title",
        Weaker::Cleared,
        "the ALPR Administrator's title is no longer recorded and shown (R5.5)",
    ),
    rule(
        "accounts.session_hours",
        Weaker::Higher,
        "sessions last longer before a new sign-in",
    ),
    rule(
        "accounts.lockout_attempts",
        Weaker::Higher,
        "more passwords can be guessed before an account locks",
    ),
    rule(
        "accounts.lockout_minutes",
        Weaker::ShorterFromNever,
        "a locked account unlocks on its own, or sooner, allowing more guesses",
    ),
    rule(
        "accounts.admin_lockout_minutes",
        Weaker::Lower,
        "a locked administrator account unlocks sooner, allowing more guesses",
    ),
    rule(
        "accounts.inactivity_days",
        Weaker::Higher,
        "unused accounts stay open longer before suspension (R5.4)",
    ),
    rule(
        "accounts.approval_days",
        Weaker::Higher,
        "approvals are reviewed less often (R5.3)",
    ),
    rule(
        "accounts.training_days",
        Weaker::Higher,
        "training is repeated less often (R5.2)",
    ),
    rule(
        "accounts.min_password_len",
        Weaker::Lower,
        "shorter passwords are accepted",
    ),
    rule(
        "purpose.case_number_format",
        Weaker::ChangedOrCleared,
        "searches may name case numbers of another shape, or none the agency issues (R4.4)",
    ),
    rule(
        "accounts.passkey_roles",
        Weaker::Shrunk,
        "people of the roles taken off may sign in with a code that can be phished, instead of a passkey (R11.4)",
    ),
    rule(
        "accounts.passkeys_only",
        Weaker::SwitchedOff,
        "sign-in codes, which can be phished, are accepted again from people who have passkeys (R11.4)",
    ),
    rule(
        "devices_required",
        Weaker::SwitchedOff,
        "plate data can then be reached from any computer, not only the agency's devices (003 § Accessing ALPR information)",
    ),
    rule(
        "purpose.offenses",
        Weaker::GrownOrCleared,
        "searches may name more offenses (R4.4)",
    ),
    rule(
        "retention.reads_days",
        Weaker::AnyChange,
        "shorter deletes reads at the next purge; longer keeps more plate data about people (R6.1)",
    ),
    rule(
        "retention.images_days",
        Weaker::AnyChange,
        "shorter deletes pictures at the next purge; longer keeps more pictures of people (R6.1)",
    ),
    rule(
        "retention.hotlists_days",
        Weaker::Lower,
        "hot-list entries and their history are deleted sooner (R3.5)",
    ),
    rule(
        "retention.access_log_days",
        Weaker::Lower,
        "the access log is deleted sooner, before audits can read it (R4.5)",
    ),
    rule(
        "retention.audit_documents_days",
        Weaker::Lower,
        "audit reports and kept requests are deleted sooner (R4.5)",
    ),
    rule(
        "retention.downloads_days",
        Weaker::Higher,
        "downloaded plate data may be kept longer before it must be destroyed (R6.3)",
    ),
    rule(
        "audit.workday_start_hour",
        Weaker::Lower,
        "fewer accesses are listed as outside working hours (R8.1)",
    ),
    rule(
        "audit.workday_end_hour",
        Weaker::Higher,
        "fewer accesses are listed as outside working hours (R8.1)",
    ),
    rule(
        "audit.unusual_volume_factor",
        Weaker::Higher,
        "fewer days are listed as unusual volume (R8.1)",
    ),
    rule(
        "audit.unusual_volume_minimum",
        Weaker::Higher,
        "fewer days are listed as unusual volume (R8.1)",
    ),
];

/// A setting whose value changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub field: String,
    pub old: Value,
    pub new: Value,
}

/// A change that weakens a rule, with the reason from its rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Weakening {
    pub field: String,
    pub old: Value,
    pub new: Value,
    pub why: &'static str,
}

/// What a problem with a policy body is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("the policy must be a JSON object")]
    NotAnObject,
    #[error("the policy lacks {}: send every field (GET /api/v1/policy gives them all), or use PATCH to change only some", .0.join(", "))]
    Missing(Vec<String>),
    #[error("the policy has no field {}", .0.join(", "))]
    Unknown(Vec<String>),
    #[error("{}", .0.join("; "))]
    WrongType(Vec<String>),
}

/// Fields added after `PUT /api/v1/policy` was published: a client
/// written before them sends every field it knows, so a `PUT` without
/// one keeps its current value (see [`keep_absent`]) instead of being
/// refused or resetting it.
pub const KEPT_WHEN_ABSENT: &[&str] = &[
    "map.geocoder_url",
    "devices_required",
    "accounts.passkey_roles",
    "accounts.passkeys_only",
];

/// Fills the [`KEPT_WHEN_ABSENT`] fields a `PUT` body lacks from the
/// policy in force.
pub fn keep_absent(body: &mut Value, current: &AgencyPolicy) {
    let Ok(current) = serde_json::to_value(current) else {
        return;
    };
    for path in KEPT_WHEN_ABSENT {
        let pointer: String = path.split('.').map(|k| format!("/{k}")).collect();
        let (Some((parent, last)), None, Some(v)) = (
            pointer.rsplit_once('/'),
            body.pointer(&pointer),
            current.pointer(&pointer),
        ) else {
            continue;
        };
        if let Some(Value::Object(m)) = body.pointer_mut(parent) {
            m.insert(last.to_string(), v.clone());
        }
    }
}

/// The policy's JSON form with every field, as a template.
fn template() -> Value {
    serde_json::to_value(AgencyPolicy::default()).unwrap_or(Value::Null)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "true or false",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Whether `v` may stand where the template has `t`. A `null` in the
/// template is an optional text (the case-number template).
fn same_kind(t: &Value, v: &Value) -> bool {
    match t {
        Value::Null => v.is_null() || v.is_string(),
        _ => std::mem::discriminant(t) == std::mem::discriminant(v),
    }
}

#[derive(Default)]
struct Problems {
    missing: Vec<String>,
    unknown: Vec<String>,
    wrong: Vec<String>,
}

fn walk(
    t: &Map<String, Value>,
    v: &Map<String, Value>,
    prefix: &str,
    full: bool,
    p: &mut Problems,
) {
    let path = |k: &str| format!("{prefix}{k}");
    for (k, tv) in t {
        match v.get(k) {
            None if full && !KEPT_WHEN_ABSENT.contains(&path(k).as_str()) => {
                p.missing.push(path(k))
            }
            None => {}
            Some(vv) => match (tv, vv) {
                (Value::Object(tm), Value::Object(vm)) => {
                    walk(tm, vm, &format!("{}.", path(k)), full, p)
                }
                _ if same_kind(tv, vv) => {}
                _ => p.wrong.push(format!(
                    "{} must be {}, not {}",
                    path(k),
                    kind_of(tv),
                    kind_of(vv)
                )),
            },
        }
    }
    for k in v.keys() {
        if !t.contains_key(k) {
            p.unknown.push(path(k));
        }
    }
}

fn check_shape(body: &Value, full: bool) -> Result<(), FieldError> {
    let (Value::Object(t), Value::Object(v)) = (template(), body) else {
        return Err(FieldError::NotAnObject);
    };
    let mut p = Problems::default();
    walk(&t, v, "", full, &mut p);
    if !p.missing.is_empty() {
        Err(FieldError::Missing(p.missing))
    } else if !p.unknown.is_empty() {
        Err(FieldError::Unknown(p.unknown))
    } else if !p.wrong.is_empty() {
        Err(FieldError::WrongType(p.wrong))
    } else {
        Ok(())
    }
}

/// A whole replacement (`PUT`): every field present, at every level,
/// none unknown, each of the right kind. Names every field that fails.
pub fn check_fields(body: &Value) -> Result<(), FieldError> {
    check_shape(body, true)
}

/// A partial change (`PATCH`, RFC 7396 merge patch): only known fields,
/// each of the right kind; `null` is refused except where a field may be
/// empty (it would otherwise mean "back to the default", the very reset
/// a `PUT` no longer does).
pub fn check_patch(patch: &Value) -> Result<(), FieldError> {
    check_shape(patch, false)
}

/// Applies an RFC 7396 merge patch: objects merge key by key, anything
/// else replaces. (A `null` only reaches here where the field allows it,
/// see [`check_patch`], and then sets it to none.)
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, pv) in p {
                match t.get_mut(k) {
                    Some(tv) if pv.is_object() && tv.is_object() => merge_patch(tv, pv),
                    _ => {
                        t.insert(k.clone(), pv.clone());
                    }
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

fn leaves(v: &Value, prefix: &str, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                leaves(x, &format!("{prefix}{k}."), out);
            }
        }
        _ => out.push((prefix.trim_end_matches('.').to_string(), v.clone())),
    }
}

/// Every setting whose value differs, by dotted path, in the policy's
/// field order.
pub fn changes(old: &AgencyPolicy, new: &AgencyPolicy) -> Vec<Change> {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    leaves(
        &serde_json::to_value(old).unwrap_or(Value::Null),
        "",
        &mut a,
    );
    leaves(
        &serde_json::to_value(new).unwrap_or(Value::Null),
        "",
        &mut b,
    );
    let old_of = |f: &str| a.iter().find(|(k, _)| k == f).map(|(_, v)| v.clone());
    b.iter()
        .filter_map(|(field, nv)| {
            let ov = old_of(field).unwrap_or(Value::Null);
            (ov != *nv).then(|| Change {
                field: field.clone(),
                old: ov,
                new: nv.clone(),
            })
        })
        .collect()
}

fn is_set(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.trim().is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => true,
    }
}

/// Whether the change of one setting from `old` to `new` is weaker.
pub fn is_weaker(how: Weaker, old: &Value, new: &Value) -> bool {
    let num = |v: &Value| v.as_f64();
    match how {
        Weaker::Lower => matches!((num(old), num(new)), (Some(o), Some(n)) if n < o),
        Weaker::Higher => matches!((num(old), num(new)), (Some(o), Some(n)) if n > o),
        Weaker::AnyChange => old != new,
        Weaker::Cleared => is_set(old) && !is_set(new),
        Weaker::ChangedOrCleared => is_set(old) && old != new,
        Weaker::GrownOrCleared => match (old, new) {
            (Value::Array(o), Value::Array(n)) => {
                (!o.is_empty() && n.is_empty()) || n.iter().any(|x| !o.contains(x))
            }
            _ => old != new,
        },
        Weaker::ShorterFromNever => match (num(old), num(new)) {
            (Some(o), Some(n)) => n != 0.0 && (o == 0.0 || n < o),
            _ => false,
        },
        Weaker::SwitchedOff => old == &Value::Bool(true) && new == &Value::Bool(false),
        Weaker::Shrunk => match (old, new) {
            (Value::Array(o), Value::Array(n)) => o.iter().any(|x| !n.contains(x)),
            _ => false,
        },
    }
}

/// The changes from `old` to `new` that weaken a rule of
/// [`WEAKENING_RULES`], in the table's order.
pub fn weakenings(old: &AgencyPolicy, new: &AgencyPolicy) -> Vec<Weakening> {
    let all = changes(old, new);
    WEAKENING_RULES
        .iter()
        .filter_map(|r| {
            let c = all.iter().find(|c| c.field == r.field)?;
            is_weaker(r.weaker_when, &c.old, &c.new).then(|| Weakening {
                field: c.field.clone(),
                old: c.old.clone(),
                new: c.new.clone(),
                why: r.why,
            })
        })
        .collect()
}

/// The weakenings that `confirmed` (field paths the request names) does
/// not cover. Empty: the change may go ahead.
pub fn unconfirmed<'a>(weak: &'a [Weakening], confirmed: &[String]) -> Vec<&'a Weakening> {
    weak.iter()
        .filter(|w| !confirmed.iter().any(|c| c == &w.field))
        .collect()
}

/// One sentence listing weakenings, for an error message.
pub fn describe(weak: &[&Weakening]) -> String {
    weak.iter()
        .map(|w| format!("{} from {} to {} ({})", w.field, w.old, w.new, w.why))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn full() -> Value {
        serde_json::to_value(AgencyPolicy::default()).unwrap()
    }

    #[test]
    fn a_put_must_name_every_field_at_every_level() {
        assert_eq!(check_fields(&full()), Ok(()));
        let err = check_fields(&json!({})).unwrap_err();
        let FieldError::Missing(m) = &err else {
            panic!("{err:?}")
        };
        assert!(m.contains(&"retention".to_string()), "{m:?}");
        assert!(m.contains(&"administrator_name".to_string()), "{m:?}");
        // A section with one field left out names that field.
        let mut v = full();
        v["retention"]
            .as_object_mut()
            .unwrap()
            .remove("access_log_days");
        v["accounts"]
            .as_object_mut()
            .unwrap()
            .remove("session_hours");
        assert_eq!(
            check_fields(&v),
            Err(FieldError::Missing(vec![
                "accounts.session_hours".into(),
                "retention.access_log_days".into()
            ]))
        );
        assert!(check_fields(&v)
            .unwrap_err()
            .to_string()
            .contains("accounts.session_hours, retention.access_log_days"));
    }

    #[test]
    fn unknown_fields_and_wrong_kinds_are_named() {
        let mut v = full();
        v["retention"]["reads_dys"] = json!(30);
        assert_eq!(
            check_fields(&v),
            Err(FieldError::Unknown(vec!["retention.reads_dys".into()]))
        );
        let mut v = full();
        v["retention"]["reads_days"] = json!("30");
        v["purpose"]["case_number_format"] = json!("##-####");
        assert_eq!(
            check_fields(&v),
            Err(FieldError::WrongType(vec![
                "retention.reads_days must be a number, not text".into()
            ]))
        );
        assert_eq!(check_fields(&json!([])), Err(FieldError::NotAnObject));
        // A patch may leave fields out, never name unknown ones.
        assert_eq!(
            check_patch(&json!({"retention": {"reads_days": 90}})),
            Ok(())
        );
        assert!(check_patch(&json!({"retention": {"reads": 90}})).is_err());
        assert!(check_patch(&json!({"retention": null})).is_err());
    }

    #[test]
    fn a_merge_patch_changes_only_what_it_names() {
        let mut v = full();
        merge_patch(
            &mut v,
            &json!({"retention": {"reads_days": 90}, "agency_name": "Oakland PD"}),
        );
        let p: AgencyPolicy = serde_json::from_value(v).unwrap();
        assert_eq!(p.retention.reads_days, 90);
        assert_eq!(p.retention.access_log_days, 730);
        assert_eq!(p.agency_name, "Oakland PD");
    }

    #[test]
    fn the_reported_reset_is_three_weakenings() {
        // Issue 22 finding 5: `{}` with defaults cut the access log from
        // 730 to 365 days and blanked the administrator's name and title.
        let mut old = AgencyPolicy {
            administrator_name: "Dana Reyes".into(),
            administrator_title: "Captain".into(),
            ..AgencyPolicy::default()
        };
        old.retention.access_log_days = 1095;
        let new = AgencyPolicy::default();
        let w: Vec<String> = weakenings(&old, &new)
            .into_iter()
            .map(|w| w.field)
            .collect();
        assert_eq!(
            w,
            [
                "administrator_name",
                "administrator_title",
                "retention.access_log_days"
            ]
        );
        let c = changes(&old, &new);
        assert_eq!(c.len(), 3);
        assert_eq!(c[2].old, json!(1095));
        assert_eq!(c[2].new, json!(730));
    }

    #[test]
    fn each_direction_of_weakening() {
        let base = AgencyPolicy::default();
        let weak = |f: &dyn Fn(&mut AgencyPolicy)| {
            let mut p = base.clone();
            f(&mut p);
            weakenings(&base, &p)
                .into_iter()
                .map(|w| w.field)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            weak(&|p| p.accounts.lockout_attempts = 8),
            ["accounts.lockout_attempts"]
        );
        assert!(weak(&|p| p.accounts.lockout_attempts = 3).is_empty());
        assert_eq!(
            weak(&|p| p.retention.reads_days = 400),
            ["retention.reads_days"]
        );
        assert_eq!(
            weak(&|p| p.retention.reads_days = 90),
            ["retention.reads_days"]
        );
        assert!(weak(&|p| p.retention.access_log_days = 1000).is_empty());
        assert_eq!(
            weak(&|p| p.retention.downloads_days = 60),
            ["retention.downloads_days"]
        );
        assert!(weak(&|p| p.retention.downloads_days = 10).is_empty());
        assert_eq!(
            weak(&|p| p.accounts.lockout_minutes = 30),
            ["accounts.lockout_minutes"]
        );
        assert_eq!(
            weak(&|p| p.accounts.admin_lockout_minutes = 5),
            ["accounts.admin_lockout_minutes"]
        );
        assert!(weak(&|p| p.accounts.admin_lockout_minutes = 60).is_empty());
        assert_eq!(
            weak(&|p| p.purpose.offenses = vec!["jaywalking".into()]),
            ["purpose.offenses"]
        );
        assert!(weak(&|p| p.agency_name = "Oakland PD".into()).is_empty());
        assert!(weak(&|p| p.public_policy_markdown = "# Policy".into()).is_empty());
        assert!(weak(&|p| p.purpose.case_number_format = Some("##-####".into())).is_empty());
        // From a time to never (0) is stricter; to a shorter time weaker.
        assert!(!is_weaker(Weaker::ShorterFromNever, &json!(30), &json!(0)));
        assert!(is_weaker(Weaker::ShorterFromNever, &json!(30), &json!(10)));
        // Fewer offenses is stricter; an emptied list falls back to all.
        assert!(!is_weaker(
            Weaker::GrownOrCleared,
            &json!(["a", "b"]),
            &json!(["a"])
        ));
        assert!(is_weaker(Weaker::GrownOrCleared, &json!(["a"]), &json!([])));
    }

    #[test]
    fn confirmations_name_each_weakened_field() {
        let base = AgencyPolicy::default();
        let mut p = base.clone();
        p.retention.reads_days = 90;
        p.accounts.session_hours = 20;
        let w = weakenings(&base, &p);
        assert_eq!(unconfirmed(&w, &[]).len(), 2);
        let one = unconfirmed(&w, &["retention.reads_days".into()]);
        assert_eq!(one.len(), 1);
        assert!(describe(&one).contains("accounts.session_hours from 12 to 20"));
        assert!(unconfirmed(
            &w,
            &[
                "retention.reads_days".into(),
                "accounts.session_hours".into()
            ]
        )
        .is_empty());
    }

    #[test]
    fn every_rule_names_a_real_setting() {
        let mut all = Vec::new();
        leaves(&full(), "", &mut all);
        for r in WEAKENING_RULES {
            assert!(
                all.iter().any(|(k, _)| k == r.field),
                "{} is not a policy field",
                r.field
            );
        }
    }

    #[test]
    fn a_put_written_before_a_field_existed_keeps_that_fields_value() {
        let mut current = AgencyPolicy::default();
        current.map.geocoder_url = "https://geo.city.gov/?q={query}".into();
        let mut old_client = serde_json::to_value(AgencyPolicy::default()).unwrap();
        old_client["map"]
            .as_object_mut()
            .unwrap()
            .remove("geocoder_url");
        assert!(check_fields(&old_client).is_ok(), "not refused as missing");
        keep_absent(&mut old_client, &current);
        let kept: AgencyPolicy = serde_json::from_value(old_client).unwrap();
        assert_eq!(kept.map.geocoder_url, current.map.geocoder_url, "not reset");
        // A client that sends it sets it, empty included.
        let mut new_client = serde_json::to_value(AgencyPolicy::default()).unwrap();
        keep_absent(&mut new_client, &current);
        let set: AgencyPolicy = serde_json::from_value(new_client).unwrap();
        assert_eq!(set.map.geocoder_url, "");
        // Every other field is still required.
        let mut lacking = serde_json::to_value(AgencyPolicy::default()).unwrap();
        lacking["map"].as_object_mut().unwrap().remove("tile_url");
        assert!(
            matches!(check_fields(&lacking), Err(FieldError::Missing(f)) if f == ["map.tile_url"])
        );
    }
}
