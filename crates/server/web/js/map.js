// A map drawn on a plain canvas, so it works with no internet: a
// latitude/longitude grid, a scale bar, the agency's cameras and the
// results. Tiles are drawn underneath only when the agency has set its
// own tile server in the policy. People draw a radius (press, drag,
// release) or a polygon (click the corners; double-click, Enter or a
// click on the first corner closes it) to canvass an area.

import { h } from './dom.js';

const TILE = 256;
const EARTH_M = 6_371_008.8;

function project(lat, lon, zoom) {
  const s = TILE * 2 ** zoom;
  const phi = (Math.max(-85, Math.min(85, lat)) * Math.PI) / 180;
  return {
    x: ((lon + 180) / 360) * s,
    y: ((1 - Math.log(Math.tan(phi) + 1 / Math.cos(phi)) / Math.PI) / 2) * s,
  };
}

function unproject(x, y, zoom) {
  const s = TILE * 2 ** zoom;
  const lon = (x / s) * 360 - 180;
  const n = Math.PI - (2 * Math.PI * y) / s;
  return { lat: (180 / Math.PI) * Math.atan(Math.sinh(n)), lon };
}

/** Great-circle distance in metres. */
export function distanceM(a, b) {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const q = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_M * Math.asin(Math.min(1, Math.sqrt(q)));
}

export class MapView {
  /**
   * `settings`: {center_lat, center_lon, zoom, tile_url}. `onShape` is
   * called with the drawn shape ({kind:'circle', center, radius_m} or
   * {kind:'polygon', points}) or null when it is cleared.
   */
  constructor(settings, { onShape, onPick, label = 'Map' } = {}) {
    this.center = { lat: settings.center_lat, lon: settings.center_lon };
    this.zoom = settings.zoom;
    this.tileUrl = settings.tile_url || '';
    this.tiles = new Map();
    this.onShape = onShape;
    this.onPick = onPick;
    this.mode = 'pan';
    this.shape = null;
    this.draft = null;
    this.layers = { cameras: [], results: [] };
    this.selected = null;
    this.canvas = h('canvas', {
      class: 'map-canvas', tabindex: '0', role: 'img',
      'aria-label': `${label}. Arrow keys move the map, plus and minus zoom.`,
    });
    this.status = h('span', { class: 'map-status', 'aria-live': 'polite' });
    const tool = (mode, text, title) => h('button', {
      type: 'button', class: 'tool', 'data-mode': mode, title, 'aria-pressed': String(mode === 'pan'),
      onclick: () => this.setMode(mode),
    }, text);
    this.toolbar = h('div', { class: 'map-tools', role: 'toolbar', 'aria-label': 'Map tools' },
      tool('pan', 'Move', 'Drag to move the map'),
      tool('circle', 'Draw radius', 'Press at the centre and drag out the radius'),
      tool('polygon', 'Draw polygon', 'Click the corners; double-click or press Enter to close'),
      h('button', { type: 'button', class: 'tool', onclick: () => this.clearShape() }, 'Clear shape'),
      h('button', { type: 'button', class: 'tool', 'aria-label': 'Zoom in', onclick: () => this.zoomBy(1) }, '+'),
      h('button', { type: 'button', class: 'tool', 'aria-label': 'Zoom out', onclick: () => this.zoomBy(-1) }, '−'),
      this.status);
    // What the marks mean, where the streets come from, and a warning
    // when they come from a public service (issue 23 item 5).
    let source = 'No street map (the agency has set no tile server): a latitude/longitude grid';
    if (this.tileUrl) { try { source = `Streets: ${new URL(this.tileUrl.replace(/[{}]/g, '')).host}`; } catch { source = 'Streets: the agency\'s tile server'; } }
    this.legend = h('p', { class: 'map-legend' },
      h('span', { class: 'key cam', 'aria-hidden': 'true' }), ' camera ',
      h('span', { class: 'key read', 'aria-hidden': 'true' }), ' read found ',
      h('span', { class: 'key sel', 'aria-hidden': 'true' }), ' selected ',
      h('span', { class: 'key area', 'aria-hidden': 'true' }), ' search area · ', source);
    this.el = h('div', { class: 'map' }, this.toolbar, this.canvas, this.legend,
      settings.warning ? h('p', { class: 'map-warning', role: 'note' }, settings.warning) : null);
    this.bind();
    new ResizeObserver(() => this.draw()).observe(this.canvas);
  }

  setMode(mode) {
    this.mode = mode;
    this.draft = null;
    for (const b of this.toolbar.querySelectorAll('[data-mode]')) b.setAttribute('aria-pressed', String(b.dataset.mode === mode));
    this.canvas.style.cursor = mode === 'pan' ? 'grab' : 'crosshair';
    this.say(mode === 'circle' ? 'Press at the centre and drag out the radius.'
      : mode === 'polygon' ? 'Click the corners; double-click or press Enter to close.' : '');
    this.draw();
  }

  say(text) { this.status.textContent = text; }

  setLayer(name, points) { this.layers[name] = points; this.draw(); }

  select(id) { this.selected = id; this.draw(); }

  /** Centres the map on the given points. */
  fit(points) {
    const ok = points.filter((p) => Number.isFinite(p.lat) && Number.isFinite(p.lon));
    if (!ok.length) return;
    const lat = ok.map((p) => p.lat); const lon = ok.map((p) => p.lon);
    this.center = { lat: (Math.min(...lat) + Math.max(...lat)) / 2, lon: (Math.min(...lon) + Math.max(...lon)) / 2 };
    const w = this.canvas.clientWidth || 600; const hgt = this.canvas.clientHeight || 400;
    for (let z = 17; z >= 3; z--) {
      const a = project(Math.max(...lat), Math.min(...lon), z); const b = project(Math.min(...lat), Math.max(...lon), z);
      if (b.x - a.x < w * 0.8 && b.y - a.y < hgt * 0.8) { this.zoom = z; break; }
    }
    this.draw();
  }

  setShape(shape, quiet) {
    this.shape = shape;
    this.draft = null;
    this.draw();
    if (!quiet && this.onShape) this.onShape(shape);
  }

  clearShape() { this.setShape(null); this.say('Shape cleared.'); }

  zoomBy(d) {
    this.zoom = Math.max(3, Math.min(18, this.zoom + d));
    this.draw();
  }

  toScreen(p) {
    const c = project(this.center.lat, this.center.lon, this.zoom);
    const q = project(p.lat, p.lon, this.zoom);
    return { x: q.x - c.x + this.canvas.clientWidth / 2, y: q.y - c.y + this.canvas.clientHeight / 2 };
  }

  toLatLon(x, y) {
    const c = project(this.center.lat, this.center.lon, this.zoom);
    return unproject(c.x + x - this.canvas.clientWidth / 2, c.y + y - this.canvas.clientHeight / 2, this.zoom);
  }

  bind() {
    const cv = this.canvas;
    let drag = null;
    const pos = (e) => { const r = cv.getBoundingClientRect(); return { x: e.clientX - r.left, y: e.clientY - r.top }; };
    cv.addEventListener('pointerdown', (e) => {
      const p = pos(e);
      cv.setPointerCapture(e.pointerId);
      if (this.mode === 'circle') {
        this.draft = { kind: 'circle', center: this.toLatLon(p.x, p.y), radius_m: 0 };
      } else if (this.mode === 'pan') {
        drag = { p, center: project(this.center.lat, this.center.lon, this.zoom), moved: false };
      }
    });
    cv.addEventListener('pointermove', (e) => {
      const p = pos(e);
      if (this.mode === 'circle' && this.draft) {
        this.draft.radius_m = Math.round(distanceM(this.draft.center, this.toLatLon(p.x, p.y)));
        this.say(`Radius ${this.draft.radius_m} m`);
        this.draw();
      } else if (this.mode === 'polygon' && this.draft) {
        this.draft.cursor = this.toLatLon(p.x, p.y);
        this.draw();
      } else if (drag) {
        const dx = p.x - drag.p.x; const dy = p.y - drag.p.y;
        if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
        this.center = unproject(drag.center.x - dx, drag.center.y - dy, this.zoom);
        this.draw();
      }
    });
    cv.addEventListener('pointerup', (e) => {
      const p = pos(e);
      if (this.mode === 'circle' && this.draft) {
        const d = this.draft;
        this.draft = null;
        if (d.radius_m >= 10) this.setShape(d);
        else this.say('Drag further to draw a radius of at least 10 m.');
      } else if (this.mode === 'polygon') {
        this.addCorner(this.toLatLon(p.x, p.y), p);
      } else if (drag && !drag.moved && this.onPick) {
        const hit = this.hit(p);
        if (hit) this.onPick(hit);
      }
      drag = null;
    });
    cv.addEventListener('dblclick', (e) => { if (this.mode === 'polygon') { e.preventDefault(); this.closePolygon(); } });
    cv.addEventListener('wheel', (e) => { e.preventDefault(); this.zoomBy(e.deltaY < 0 ? 1 : -1); }, { passive: false });
    cv.addEventListener('keydown', (e) => {
      const step = 80;
      const c = project(this.center.lat, this.center.lon, this.zoom);
      const move = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] }[e.key];
      if (move) { this.center = unproject(c.x + move[0], c.y + move[1], this.zoom); this.draw(); e.preventDefault(); }
      else if (e.key === '+' || e.key === '=') { this.zoomBy(1); e.preventDefault(); }
      else if (e.key === '-') { this.zoomBy(-1); e.preventDefault(); }
      else if (e.key === 'Enter' && this.mode === 'polygon') { this.closePolygon(); e.preventDefault(); }
      else if (e.key === 'Escape') { this.draft = null; this.draw(); }
    });
  }

  addCorner(ll, screen) {
    if (!this.draft) this.draft = { kind: 'polygon', points: [] };
    const pts = this.draft.points;
    if (pts.length >= 3) {
      const first = this.toScreen(pts[0]);
      if (Math.hypot(first.x - screen.x, first.y - screen.y) < 10) { this.closePolygon(); return; }
    }
    const last = pts[pts.length - 1];
    if (last) {
      const l = this.toScreen(last);
      if (Math.hypot(l.x - screen.x, l.y - screen.y) < 3) return; // the second click of a double-click
    }
    pts.push(ll);
    this.say(`${pts.length} corner${pts.length === 1 ? '' : 's'}`);
    this.draw();
  }

  closePolygon() {
    if (!this.draft || this.draft.kind !== 'polygon') return;
    const pts = this.draft.points;
    if (pts.length < 3) { this.say('A polygon needs at least 3 corners.'); return; }
    this.setShape({ kind: 'polygon', points: pts.slice() });
    this.say(`Polygon of ${pts.length} corners drawn.`);
  }

  hit(p) {
    let best = null; let bestD = 12;
    for (const pt of this.layers.results) {
      if (!Number.isFinite(pt.lat)) continue;
      const s = this.toScreen(pt);
      const d = Math.hypot(s.x - p.x, s.y - p.y);
      if (d < bestD) { best = pt; bestD = d; }
    }
    return best;
  }

  tile(z, x, y) {
    const n = 2 ** z;
    const key = `${z}/${x}/${y}`;
    let t = this.tiles.get(key);
    if (!t) {
      t = new Image();
      t.onload = () => this.draw();
      t.src = this.tileUrl.replace('{z}', z).replace('{x}', ((x % n) + n) % n).replace('{y}', y);
      this.tiles.set(key, t);
      if (this.tiles.size > 300) this.tiles.delete(this.tiles.keys().next().value);
    }
    return t;
  }

  draw() {
    const cv = this.canvas;
    const w = cv.clientWidth; const hgt = cv.clientHeight;
    if (!w || !hgt) return;
    const dpr = window.devicePixelRatio || 1;
    if (cv.width !== Math.round(w * dpr) || cv.height !== Math.round(hgt * dpr)) {
      cv.width = Math.round(w * dpr); cv.height = Math.round(hgt * dpr);
    }
    const g = cv.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.fillStyle = '#eef1f4';
    g.fillRect(0, 0, w, hgt);
    const c = project(this.center.lat, this.center.lon, this.zoom);
    if (this.tileUrl) {
      const x0 = Math.floor((c.x - w / 2) / TILE); const y0 = Math.floor((c.y - hgt / 2) / TILE);
      for (let x = x0; x * TILE < c.x + w / 2; x++) {
        for (let y = Math.max(0, y0); y * TILE < c.y + hgt / 2 && y < 2 ** this.zoom; y++) {
          const t = this.tile(this.zoom, x, y);
          if (t.complete && t.naturalWidth) g.drawImage(t, x * TILE - c.x + w / 2, y * TILE - c.y + hgt / 2, TILE, TILE);
        }
      }
    }
    this.drawGrid(g, w, hgt);
    for (const cam of this.layers.cameras) this.dot(g, cam, 3, '#7a8699');
    this.drawShape(g, this.shape, false);
    this.drawShape(g, this.draft, true);
    for (const r of this.layers.results) {
      this.dot(g, r, r.id === this.selected ? 7 : 4.5, r.id === this.selected ? '#f2a900' : '#c62828');
    }
    this.drawScale(g, hgt);
  }

  dot(g, p, r, color) {
    if (!Number.isFinite(p.lat) || !Number.isFinite(p.lon)) return;
    const s = this.toScreen(p);
    g.beginPath(); g.arc(s.x, s.y, r, 0, 2 * Math.PI);
    g.fillStyle = color; g.fill();
    g.lineWidth = 1; g.strokeStyle = '#fff'; g.stroke();
  }

  drawGrid(g, w, hgt) {
    const tl = this.toLatLon(0, 0); const br = this.toLatLon(w, hgt);
    // The finest round step whose labels stay at least 90 px apart.
    const pxPerDegree = w / Math.max(1e-9, br.lon - tl.lon);
    const step = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20].find((s) => s * pxPerDegree >= 90) || 20;
    g.strokeStyle = 'rgba(60,80,110,0.18)'; g.fillStyle = '#4a5568'; g.lineWidth = 1;
    g.font = '11px system-ui, sans-serif';
    const digits = Math.max(0, -Math.floor(Math.log10(step)));
    for (let lat = Math.ceil(br.lat / step) * step; lat <= tl.lat; lat += step) {
      const y = this.toScreen({ lat, lon: tl.lon }).y;
      g.beginPath(); g.moveTo(0, y); g.lineTo(w, y); g.stroke();
      g.fillText(`${lat.toFixed(digits)}°`, 4, y - 2);
    }
    for (let lon = Math.ceil(tl.lon / step) * step; lon <= br.lon; lon += step) {
      const x = this.toScreen({ lat: tl.lat, lon }).x;
      g.beginPath(); g.moveTo(x, 0); g.lineTo(x, hgt); g.stroke();
      g.fillText(`${lon.toFixed(digits)}°`, x + 2, 12);
    }
  }

  drawShape(g, s, draft) {
    if (!s) return;
    g.lineWidth = 2;
    g.strokeStyle = '#1565c0';
    g.fillStyle = 'rgba(21,101,192,0.12)';
    g.setLineDash(draft ? [6, 4] : []);
    g.beginPath();
    if (s.kind === 'circle') {
      const c = this.toScreen(s.center);
      const edge = this.toScreen({ lat: s.center.lat + (s.radius_m / EARTH_M) * (180 / Math.PI), lon: s.center.lon });
      g.arc(c.x, c.y, Math.abs(c.y - edge.y), 0, 2 * Math.PI);
    } else {
      const pts = s.points.concat(draft && s.cursor ? [s.cursor] : []);
      pts.forEach((p, i) => { const q = this.toScreen(p); if (i) g.lineTo(q.x, q.y); else g.moveTo(q.x, q.y); });
      if (!draft) g.closePath();
    }
    g.fill(); g.stroke(); g.setLineDash([]);
  }

  drawScale(g, hgt) {
    const a = this.toLatLon(20, hgt - 20); const b = this.toLatLon(120, hgt - 20);
    const per100 = distanceM(a, b);
    const nice = [10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000].find((m) => m >= per100 / 2) || 200000;
    const px = (nice / per100) * 100;
    g.fillStyle = 'rgba(255,255,255,0.85)'; g.fillRect(14, hgt - 34, px + 12, 24);
    g.strokeStyle = '#222'; g.lineWidth = 2;
    g.beginPath(); g.moveTo(20, hgt - 16); g.lineTo(20 + px, hgt - 16); g.stroke();
    g.fillStyle = '#222'; g.font = '11px system-ui, sans-serif';
    g.fillText(nice >= 1000 ? `${nice / 1000} km` : `${nice} m`, 22, hgt - 20);
  }
}
