//! `platekeeper demo`: a server on a throw-away data folder with sample
//! cameras and reads, and a printout of what to try.

use std::net::SocketAddr;

use anyhow::Context;

use crate::bench::{fill, register_cameras};

pub fn run(listen: SocketAddr, reads: u64) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("platekeeper-demo-{}", std::process::id()));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let (sample, camera_key) = {
        let store = platekeeper_store::Store::open(&dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        let cameras = register_cameras(&store, 7, now)?;
        // One more camera whose key is printed, for trying ingest by hand.
        let (_, key) = store.create_camera(
            platekeeper_store::NewCamera {
                id: "demo-camera".into(),
                name: "Demo fixed camera, Broadway & 14th".into(),
                kind: platekeeper_store::CameraKind::Fixed,
                position: Some(platekeeper_core::GeoPoint::new(37.8044, -122.2712)?),
            },
            now,
        )?;
        eprintln!("generating {reads} sample reads in {} …", dir.display());
        let (_, sample) = fill(&store, &cameras, reads, 7, 5_000, now, 30, |done| {
            if done % 200_000 == 0 {
                eprintln!("  {done} reads");
            }
        })?;
        (sample, key)
    };
    let dir_text = dir.display().to_string();
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
             Data folder (deleted on exit): {dir}\n\
             The API is described at {url}/api/openapi.json\n\n\
             Try (every search is logged with its purpose):\n\
             curl -s {url}/api/v1/search -H 'content-type: application/json' -d '{{\"plate\": \"{plate}\", {purpose}}}'\n\
             curl -s {url}/api/v1/search -H 'content-type: application/json' -d '{{\"plate\": \"*{sub}*\", {purpose}}}'\n\
             curl -s {url}/api/v1/search -H 'content-type: application/json' -d '{{\"plate\": \"{plate}\", \"fuzzy\": true, {purpose}}}'\n\
             Send a read as a camera (key of camera demo-camera):\n\
             curl -s {url}/api/v1/reads -H 'authorization: Bearer {camera_key}' -H 'content-type: application/json' \\\n  \
               -d '{{\"reads\": [{{\"id\": \"6f1c2b9e-0d4a-4b8e-9c57-2f3d2b1c9e10\", \"plate\": \"8DEF456\", \"state\": \"CA\", \"ts\": \"{ts}\", \"lat\": 37.8044, \"lon\": -122.2712}}]}}'\n\
             Health and metrics: {url}/healthz  {url}/metrics\n\n\
             Demo server listening on {url} (Ctrl-C to stop)",
            dir = dir_text,
            sub = &plate[..3.min(plate.len())],
            ts = platekeeper_core::read::format_time_ms(now - 60_000),
        );
    };
    let config = platekeeper_server::Config {
        data_dir: dir.clone(),
        listen,
        max_body_bytes: platekeeper_server::Config::DEFAULT_MAX_BODY_BYTES,
    };
    let result = crate::runtime()?.block_on(platekeeper_server::serve(config, instructions));
    let _ = std::fs::remove_dir_all(&dir);
    result
}
