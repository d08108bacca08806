// Address search through the agency's own geocoder (issue 23 item 5),
// only when the policy names one: the address typed goes to that server
// and nowhere else, without cookies or a referrer.

/** Up to five places for `text`: [{lat, lon, label}]. */
export async function geocode(template, text, signal) {
  const url = template.replace('{query}', encodeURIComponent(text.trim()));
  const res = await fetch(url, { credentials: 'omit', referrerPolicy: 'no-referrer', cache: 'no-store', signal, headers: { Accept: 'application/json' } });
  if (!res.ok) throw new Error(`The agency's geocoder answered ${res.status}.`);
  return places(await res.json()).slice(0, 5);
}

/** Places in a Nominatim answer ([{lat, lon, display_name}]) or a
 * GeoJSON one (Pelias, Photon: {features: [{geometry: {coordinates:
 * [lon, lat]}, properties: {label | name}}]}); anything else is none. */
export function places(body) {
  const out = [];
  const add = (lat, lon, label) => {
    lat = Number(lat); lon = Number(lon);
    if (Number.isFinite(lat) && Number.isFinite(lon) && Math.abs(lat) <= 85 && Math.abs(lon) <= 180) {
      out.push({ lat, lon, label: String(label || `${lat.toFixed(5)}, ${lon.toFixed(5)}`).slice(0, 200) });
    }
  };
  if (Array.isArray(body)) {
    for (const p of body) if (p && typeof p === 'object') add(p.lat, p.lon, p.display_name);
  } else if (body && Array.isArray(body.features)) {
    for (const f of body.features) {
      const c = f && f.geometry && Array.isArray(f.geometry.coordinates) ? f.geometry.coordinates : [];
      const props = (f && f.properties) || {};
      add(c[1], c[0], props.label || props.name);
    }
  }
  return out;
}
