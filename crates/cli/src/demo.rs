//! `platekeeper demo`: a server on a throw-away data folder with sample
//! cameras and reads, and a printout of what to try.

use std::net::SocketAddr;

use anyhow::Context;

use platekeeper_core::account::{Training, DAY_MS};
use platekeeper_core::Role;
use platekeeper_store::{Actor, NewUser, Store};

use crate::bench::{fill, register_cameras};

/// What the demo prints about its accounts.
struct Logins {
    text: String,
    officer_password: String,
    officer_secret: String,
}

/// The demo server's `/metrics` token.
const DEMO_METRICS_TOKEN: &str = "demo-metrics-token";

/// A ready administrator, officer and auditor: enrolled, trained,
/// approved. Their passwords are printed; this is a throw-away demo.
fn demo_accounts(store: &Store, now: i64) -> anyhow::Result<Logins> {
    let mut policy = store.policy();
    policy.agency_name = "Demo Police Department".into();
    policy.administrator_name = "Dana Reyes".into();
    policy.administrator_title = "Captain".into();
    // The sample cameras are around Oakland; the web map opens there.
    policy.map.center_lat = 37.8044;
    policy.map.center_lon = -122.2712;
    policy.map.zoom = 12;
    policy.public_policy_markdown = "# ALPR usage and privacy policy (demo)\n\n\
        Plate reads are kept **365 days** and then purged, unless they are evidence in a case.\n\n\
        * Only trained, approved staff may search, and every search names its case and purpose.\n\
        * Data is shared only with California public agencies (Civil Code § 1798.90.55(b)).\n"
        .into();
    store.set_policy(policy, &Actor::system("demo"), now)?;
    let (admin_otp, admin_secret) = store.create_administrator(
        NewUser {
            username: "admin".into(),
            name: "Dana Reyes".into(),
            role: Role::Administrator,
            title: Some("Captain".into()),
        },
        365,
        now,
    )?;
    let admin = Actor {
        username: "admin".into(),
        affiliation: "Demo Police Department — Captain".into(),
        role: Some("administrator".into()),
        client: None,
    };
    // Trained, so the demo administrator can try the search and alert
    // pages too (an administrator without training is refused plate data).
    store.record_training(
        "admin",
        Training {
            course: "ALPR use and privacy".into(),
            completed_ms: now - DAY_MS,
            expires_ms: now + 364 * DAY_MS,
            recorded_ms: now,
        },
        &Actor::system("demo"),
        now,
    )?;
    let mut text = format!(
        "  admin    (administrator)  one-time password {admin_otp}  TOTP secret {admin_secret}\n"
    );
    let mut officer = (String::new(), String::new());
    for (username, name, role) in [
        ("officer", "Sam Ortiz", Role::Officer),
        ("auditor", "Lee Park", Role::Auditor),
    ] {
        let password = format!("demo-{username}-password");
        let secret = ready_user(store, username, name, role, &password, &admin, now)?;
        text.push_str(&format!(
            "  {username:<8} ({})  password {password}  TOTP secret {secret}\n",
            role.as_str()
        ));
        if role == Role::Officer {
            officer = (password, secret);
        }
    }
    Ok(Logins {
        text,
        officer_password: officer.0,
        officer_secret: officer.1,
    })
}

/// A person ready to sign in: created, password set, TOTP enrolled,
/// trained and approved for a year. Returns the TOTP secret.
pub(crate) fn ready_user(
    store: &Store,
    username: &str,
    name: &str,
    role: Role,
    password: &str,
    admin: &Actor,
    now: i64,
) -> anyhow::Result<String> {
    store.create_user(
        NewUser {
            username: username.into(),
            name: name.into(),
            role,
            title: None,
        },
        admin,
        now,
    )?;
    store.change_password(username, password, admin, now)?;
    let secret = store.begin_totp(username, now)?;
    // Enrolled with a code from a minute ago, so a sign-in works at once
    // (a code is good only once).
    let enrolled_at = now - 60_000;
    let code = platekeeper_store::credentials::totp_code(&secret, (enrolled_at / 1000) as u64)
        .unwrap_or_default();
    store.confirm_totp(username, &code, enrolled_at)?;
    store.record_training(
        username,
        Training {
            course: "ALPR use and privacy".into(),
            completed_ms: now - DAY_MS,
            expires_ms: now + 365 * DAY_MS,
            recorded_ms: now,
        },
        admin,
        now,
    )?;
    store.record_approval(username, now + 365 * DAY_MS, admin, now)?;
    Ok(secret)
}

/// A stolen-vehicle list holding some plates the sample traffic carries,
/// the plate the printed camera command sends, and a partial plate.
fn demo_hotlist(store: &Store, sample: &[(String, i64)], now: i64) -> anyhow::Result<()> {
    use platekeeper_core::hotlist::import::{self, Format};
    let list = store.create_hotlist(
        platekeeper_store::NewHotList {
            name: "Demo stolen vehicles".into(),
            kind: platekeeper_core::hotlist::ListKind::StolenVehicle,
            retention_days: 7,
            fuzzy: false,
        },
        &Actor::system("demo"),
        now,
    )?;
    let mut csv = String::from("plate,state,reason,case_number\n");
    csv.push_str("8DEF456,CA,stolen vehicle (10851 VC),26-000101\n");
    csv.push_str("7AB?12*,,partial plate from a witness,26-000102\n");
    for (plate, _) in sample.iter().step_by(97).take(20) {
        csv.push_str(&format!("{plate},,stolen vehicle (10851 VC),26-000103\n"));
    }
    let ctx = import::Context {
        kind: list.kind,
        fuzzy: list.fuzzy,
        retention_days: list.retention_days,
        now_ms: now,
        max_expiry_ms: now + 7 * 86_400_000,
    };
    let parsed = import::parse(Format::Csv, &csv, &ctx);
    store.import_hotlist(
        list.id,
        platekeeper_store::ImportFile {
            source: "demo",
            format: Format::Csv,
            sha256: "demo data",
            replace_all: false,
        },
        parsed,
        &Actor::system("demo"),
        now,
    )?;
    Ok(())
}

/// What the demo's records show from before today, made first so the log
/// stays in time order: reads from 400 days ago, past retention, which
/// the server's start-up purge removes (logged as the daily run is), and
/// an export to another agency 45 days ago whose copy is past its
/// destroy-by date with no destruction recorded (the Records page's
/// overdue list).
fn demo_past(store: &Store, now: i64) -> anyhow::Result<()> {
    use platekeeper_core::read::TimeInput;
    use platekeeper_core::{GeoPoint, PlatePattern, Purpose, RawRead};
    use platekeeper_store::{
        Access, AccessKind, AccessRequest, CameraKind, IngestItem, NewCamera, ReadQuery,
    };
    let actor = Actor::system("demo");
    let old = now - 400 * DAY_MS;
    let then = now - 45 * DAY_MS;
    let (camera, _) = store.create_camera(
        NewCamera {
            id: "demo-archive".into(),
            name: "Demo camera, Grand Ave (sample history)".into(),
            kind: CameraKind::Fixed,
            position: Some(GeoPoint::new(37.8117, -122.2585)?),
        },
        &actor,
        old,
    )?;
    let ingest = |plates: &[&str], at: i64, seq: usize| -> anyhow::Result<()> {
        let items = plates
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let raw = RawRead {
                    id: Some(format!("00000000-0000-4000-9d00-{:012}", seq + i)),
                    plate: Some((*p).into()),
                    state: Some("CA".into()),
                    ts: Some(TimeInput::EpochMs(at + i as i64 * 60_000)),
                    ..RawRead::default()
                };
                Ok(IngestItem {
                    camera: camera.num,
                    read: raw.validate(at + DAY_MS, "demo-archive")?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        store.ingest(&items)?;
        Ok(())
    };
    ingest(
        &[
            "6OLD101", "6OLD102", "6OLD103", "6OLD104", "6OLD105", "6OLD106",
        ],
        old,
        0,
    )?;
    ingest(&["7SHR201", "7SHR201", "7SHR201"], then - DAY_MS, 100)?;
    let agency = store.create_agency(
        "Alameda County DA Investigations",
        platekeeper_core::sharing::AgencyKind::CaPublic,
        "CA",
        None,
        &actor,
        then,
    )?;
    let req = store.create_sharing_request(
        platekeeper_store::NewSharingRequest {
            agency_id: agency.id,
            requester_name: "Inv. R. Okafor".into(),
            case_number: Some("ACDA-26-0417".into()),
            purpose: "Vehicle in a felony hit-and-run, their case ACDA-26-0417".into(),
            query: serde_json::json!({"plate": "7SHR201"}),
            received_on: platekeeper_core::read::format_time_ms(then)[..10].to_string(),
            document: Some(platekeeper_store::Document {
                name: "acda-request.pdf".into(),
                media_type: "application/pdf".into(),
                bytes: b"%PDF-1.4 sample written request (demo)".to_vec(),
            }),
        },
        &actor,
        then,
    )?;
    let req = store.approve_sharing_request(req.id, Some("sample data"), &actor, then)?;
    let plan = store.plan(ReadQuery {
        plate: Some(PlatePattern::parse("7SHR201", false)?),
        to_ms: Some(then),
        limit: 1000,
        ..ReadQuery::default()
    })?;
    let access = Access::new(AccessRequest {
        username: actor.username.clone(),
        affiliation: actor.affiliation.clone(),
        kind: AccessKind::Export,
        query: serde_json::json!({"sharing_request": req.id, "agency": agency.name}),
        purpose: Purpose::new(
            "ACDA-26-0417",
            "sharing request",
            "sample export to another agency",
        )?,
        client: None,
        role: None,
    });
    let found = store.sharing_reads(&access, plan, 1000)?;
    store.export_sharing(access, found, &req, &agency, &actor, then)?;
    Ok(())
}

pub fn run(listen: SocketAddr, reads: u64) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("platekeeper-demo-{}", std::process::id()));
    let now = crate::now_ms();
    // Encrypted at rest like an agency's store, under a key that lives
    // only in this process (the folder is deleted on exit anyway).
    let key = std::sync::Arc::new(platekeeper_store::at_rest::DataKey::generate()?);
    crate::keys::hold_key_privately();
    let (sample, camera_key, logins) = {
        let store = crate::keys::open(&dir, Some(key.clone()))
            .with_context(|| format!("creating {}", dir.display()))?;
        demo_past(&store, now)?;
        let logins = demo_accounts(&store, now)?;
        let cameras = register_cameras(&store, 7, now)?;
        // One more camera whose key is printed, for trying ingest by hand.
        let (_, key) = store.create_camera(
            platekeeper_store::NewCamera {
                id: "demo-camera".into(),
                name: "Demo fixed camera, Broadway & 14th".into(),
                kind: platekeeper_store::CameraKind::Fixed,
                position: Some(platekeeper_core::GeoPoint::new(37.8044, -122.2712)?),
            },
            &Actor::system("demo"),
            now,
        )?;
        eprintln!("generating {reads} sample reads in {} …", dir.display());
        let (_, sample) = fill(&store, &cameras, reads, 7, 5_000, now, 30, |done| {
            if done % 200_000 == 0 {
                eprintln!("  {done} reads");
            }
        })?;
        demo_hotlist(&store, &sample, now)?;
        (sample, key, logins)
    };
    let dir_text = dir.display().to_string();
    // The binary's own path, so the printed commands work without an install.
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "platekeeper".into());
    let plate = sample
        .iter()
        .map(|(p, _)| p.clone())
        .next()
        .unwrap_or_else(|| "7ABC123".into());
    let purpose = r#""purpose": {"case_number": "26-004211", "offense": "211 PC", "reason": "vehicle seen leaving the robbery"}"#;
    let instructions = move |addr: SocketAddr| {
        let url = format!("http://{addr}");
        println!(
            "\nPlatekeeper demo: {reads} reads from 500 cameras around Oakland over 30 days.\n\
             Data folder (encrypted at rest under a throw-away key held in memory; deleted on exit): {dir}\n\n\
             Open {url}/ in a browser and sign in with a login below (the authenticator code\n\
             comes from the TOTP secret: add it to an authenticator app, or run the totp command).\n\
             The API is described at {url}/api/openapi.json\n\n\
             Demo logins (password, then the TOTP secret for an authenticator app;\n\
             `{exe} totp --secret SECRET` prints the current code):\n{logins}\n\
             Sign in as the officer and search (every search is logged with its purpose):\n\
             TOKEN=$(curl -s {url}/api/v1/session -H 'content-type: application/json' \\\n  \
               -d \"{{\\\"username\\\": \\\"officer\\\", \\\"password\\\": \\\"{officer_pw}\\\", \\\"totp\\\": \\\"$({exe} totp --secret {officer_secret})\\\"}}\" | sed 's/.*\"token\":\"\\([^\"]*\\)\".*/\\1/')\n\
             curl -s {url}/api/v1/search -H \"authorization: Bearer $TOKEN\" -H 'content-type: application/json' -d '{{\"plate\": \"{plate}\", {purpose}}}'\n\
             curl -s {url}/api/v1/search -H \"authorization: Bearer $TOKEN\" -H 'content-type: application/json' -d '{{\"plate\": \"*{sub}*\", {purpose}}}'\n\
             curl -s {url}/api/v1/search -H \"authorization: Bearer $TOKEN\" -H 'content-type: application/json' -d '{{\"plate\": \"{plate}\", \"fuzzy\": true, {purpose}}}'\n\
             Watch live alerts (in a second terminal, with the same TOKEN):\n\
             curl -N {url}/api/v1/alerts/stream -H \"authorization: Bearer $TOKEN\"\n\
             Send a read as a camera (key of camera demo-camera); 8DEF456 is on the list\n\
             \"Demo stolen vehicles\", so the stream shows an alert at once:\n\
             curl -s {url}/api/v1/reads -H 'authorization: Bearer {camera_key}' -H 'content-type: application/json' \\\n  \
               -d '{{\"reads\": [{{\"id\": \"6f1c2b9e-0d4a-4b8e-9c57-2f3d2b1c9e10\", \"plate\": \"8DEF456\", \"state\": \"CA\", \"ts\": \"{ts}\", \"lat\": 37.8044, \"lon\": -122.2712}}]}}'\n\
             The public transparency page (no login): {url}/transparency\n\
             Health and metrics: curl -s {url}/healthz; curl -s {url}/metrics -H 'authorization: Bearer {metrics_token}'\n\n\
             Demo server listening on {url} (Ctrl-C to stop)",
            dir = dir_text,
            exe = exe,
            metrics_token = DEMO_METRICS_TOKEN,
            logins = logins.text,
            officer_pw = logins.officer_password,
            officer_secret = logins.officer_secret,
            sub = &plate[..3.min(plate.len())],
            ts = platekeeper_core::read::format_time_ms(now - 60_000),
        );
    };
    let mut config = platekeeper_server::Config::new(dir.clone(), listen);
    config.data_key = Some(key);
    // /metrics needs a token (issue 22 finding 10); the demo's is as
    // throw-away as its passwords.
    config.metrics_token = Some(DEMO_METRICS_TOKEN.into());
    let result = crate::runtime()?.block_on(platekeeper_server::serve(config, instructions));
    let _ = std::fs::remove_dir_all(&dir);
    result
}
