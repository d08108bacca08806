//! Places: points, distances, and the areas a canvass covers (SPEC R2.3).

/// Mean Earth radius used for distances (IUGG), in metres.
const EARTH_RADIUS_M: f64 = 6_371_008.8;
/// Metres per degree of latitude, close enough for bounding boxes (which
/// are only a prefilter; the exact test follows).
const M_PER_DEG_LAT: f64 = 111_320.0;
/// A canvass wider than this is a dragnet, not a canvass around an
/// incident; the limit also bounds the work one query can ask for.
pub const MAX_RADIUS_M: f64 = 50_000.0;
/// Polygon vertex bounds; fewer is not an area, more is not a hand-drawn
/// shape and only costs time.
pub const MAX_POLYGON_VERTICES: usize = 1_000;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GeoError {
    #[error("{field} is {value}; latitude must be between -90 and 90")]
    Latitude { field: &'static str, value: f64 },
    #[error("{field} is {value}; longitude must be between -180 and 180")]
    Longitude { field: &'static str, value: f64 },
    #[error("radius_m is {0}; it must be more than 0 and at most 50000 metres")]
    Radius(f64),
    #[error("polygon has {0} vertices; it needs between 3 and 1000")]
    PolygonSize(usize),
}

/// A WGS-84 position in degrees.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct GeoPoint {
    pub lat: f64,
    pub lon: f64,
}

impl GeoPoint {
    /// Checks ranges (and rejects NaN and infinities, which fail them).
    pub fn new(lat: f64, lon: f64) -> Result<GeoPoint, GeoError> {
        Self::named(lat, lon, "lat", "lon")
    }

    /// As [`GeoPoint::new`], naming the fields in errors.
    pub fn named(
        lat: f64,
        lon: f64,
        lat_field: &'static str,
        lon_field: &'static str,
    ) -> Result<GeoPoint, GeoError> {
        if !(-90.0..=90.0).contains(&lat) {
            return Err(GeoError::Latitude {
                field: lat_field,
                value: lat,
            });
        }
        if !(-180.0..=180.0).contains(&lon) {
            return Err(GeoError::Longitude {
                field: lon_field,
                value: lon,
            });
        }
        Ok(GeoPoint { lat, lon })
    }

    /// Microdegrees (about 0.11 m of latitude): the stored precision.
    pub fn to_micro(self) -> (i32, i32) {
        (
            (self.lat * 1e6).round() as i32,
            (self.lon * 1e6).round() as i32,
        )
    }

    pub fn from_micro(lat: i32, lon: i32) -> GeoPoint {
        GeoPoint {
            lat: lat as f64 / 1e6,
            lon: lon as f64 / 1e6,
        }
    }

    /// Great-circle distance in metres (haversine).
    pub fn distance_m(self, other: GeoPoint) -> f64 {
        let (p1, p2) = (self.lat.to_radians(), other.lat.to_radians());
        let dp = p2 - p1;
        let dl = (other.lon - self.lon).to_radians();
        let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_M * a.sqrt().asin()
    }
}

/// A latitude/longitude box, in microdegrees, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MicroBox {
    pub min_lat: i32,
    pub max_lat: i32,
    pub min_lon: i32,
    pub max_lon: i32,
}

impl MicroBox {
    pub fn contains(&self, lat: i32, lon: i32) -> bool {
        (self.min_lat..=self.max_lat).contains(&lat) && (self.min_lon..=self.max_lon).contains(&lon)
    }
}

/// The area of a canvass.
#[derive(Debug, Clone, PartialEq)]
pub enum Area {
    Circle { center: GeoPoint, radius_m: f64 },
    Polygon(Vec<GeoPoint>),
}

impl Area {
    pub fn circle(center: GeoPoint, radius_m: f64) -> Result<Area, GeoError> {
        if !(radius_m > 0.0 && radius_m <= MAX_RADIUS_M) {
            return Err(GeoError::Radius(radius_m));
        }
        Ok(Area::Circle { center, radius_m })
    }

    pub fn polygon(vertices: Vec<GeoPoint>) -> Result<Area, GeoError> {
        if !(3..=MAX_POLYGON_VERTICES).contains(&vertices.len()) {
            return Err(GeoError::PolygonSize(vertices.len()));
        }
        Ok(Area::Polygon(vertices))
    }

    /// A box around the area, for the index prefilter.
    pub fn bounding_box(&self) -> MicroBox {
        let (min_lat, max_lat, min_lon, max_lon) = match self {
            Area::Circle { center, radius_m } => {
                let dlat = radius_m / M_PER_DEG_LAT;
                let cos = center.lat.to_radians().cos().max(0.01);
                let dlon = radius_m / (M_PER_DEG_LAT * cos);
                (
                    center.lat - dlat,
                    center.lat + dlat,
                    center.lon - dlon,
                    center.lon + dlon,
                )
            }
            Area::Polygon(v) => v.iter().fold(
                (f64::MAX, f64::MIN, f64::MAX, f64::MIN),
                |(a, b, c, d), p| (a.min(p.lat), b.max(p.lat), c.min(p.lon), d.max(p.lon)),
            ),
        };
        // The box is only a prefilter: widen it (1% and ~1 m) so rounding
        // and the spherical approximations above can never cut off a
        // point the exact test would keep.
        let pad_lat = (max_lat - min_lat) * 0.01 + 1e-5;
        let pad_lon = (max_lon - min_lon) * 0.01 + 1e-5;
        MicroBox {
            min_lat: ((min_lat - pad_lat) * 1e6).floor() as i32,
            max_lat: ((max_lat + pad_lat) * 1e6).ceil() as i32,
            min_lon: ((min_lon - pad_lon) * 1e6).floor() as i32,
            max_lon: ((max_lon + pad_lon) * 1e6).ceil() as i32,
        }
    }

    pub fn contains(&self, p: GeoPoint) -> bool {
        match self {
            Area::Circle { center, radius_m } => center.distance_m(p) <= *radius_m,
            Area::Polygon(v) => point_in_polygon(v, p),
        }
    }
}

/// Even-odd ray casting. Canvass polygons span a few kilometres, where
/// treating degrees as planar coordinates is accurate to centimetres.
fn point_in_polygon(vertices: &[GeoPoint], p: GeoPoint) -> bool {
    let mut inside = false;
    let mut j = vertices.len() - 1;
    for i in 0..vertices.len() {
        let (a, b) = (vertices[i], vertices[j]);
        if (a.lat > p.lat) != (b.lat > p.lat)
            && p.lon < (b.lon - a.lon) * (p.lat - a.lat) / (b.lat - a.lat) + a.lon
        {
            inside = !inside;
        }
        j = i;
    }
    inside
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_out_of_range_and_nan() {
        assert!(GeoPoint::new(90.1, 0.0).is_err());
        assert!(GeoPoint::new(0.0, -180.5).is_err());
        assert!(GeoPoint::new(f64::NAN, 0.0).is_err());
        assert!(GeoPoint::new(0.0, f64::INFINITY).is_err());
        assert!(GeoPoint::new(-90.0, 180.0).is_ok());
    }

    #[test]
    fn distance_is_right_for_a_known_pair() {
        // Sacramento city hall to Oakland city hall is about 120 km.
        let sac = GeoPoint::new(38.5816, -121.4944).unwrap();
        let oak = GeoPoint::new(37.8053, -122.2727).unwrap();
        let d = sac.distance_m(oak);
        assert!((d - 110_000.0).abs() < 15_000.0, "{d}");
    }

    #[test]
    fn circle_contains_and_box_covers() {
        let c = GeoPoint::new(37.8, -122.27).unwrap();
        let area = Area::circle(c, 500.0).unwrap();
        let near = GeoPoint::new(37.803, -122.27).unwrap(); // ~333 m north
        let far = GeoPoint::new(37.806, -122.27).unwrap(); // ~667 m north
        assert!(area.contains(near));
        assert!(!area.contains(far));
        let b = area.bounding_box();
        let (la, lo) = near.to_micro();
        assert!(b.contains(la, lo));
        // A point just inside the radius, due north, east and north-east,
        // is inside the box too.
        for bearing in [0.0f64, 90.0, 45.0, 180.0, 270.0] {
            let d: f64 = 499.9 / 6_371_008.8;
            let (p1, l1, b) = (c.lat.to_radians(), c.lon.to_radians(), bearing.to_radians());
            let p2 = (p1.sin() * d.cos() + p1.cos() * d.sin() * b.cos()).asin();
            let l2 = l1 + (b.sin() * d.sin() * p1.cos()).atan2(d.cos() - p1.sin() * p2.sin());
            let edge = GeoPoint::new(p2.to_degrees(), l2.to_degrees()).unwrap();
            assert!(area.contains(edge), "{bearing}");
            let (la, lo) = edge.to_micro();
            assert!(area.bounding_box().contains(la, lo), "{bearing}");
        }
        assert!(Area::circle(c, 0.0).is_err());
        assert!(Area::circle(c, f64::NAN).is_err());
        assert!(Area::circle(c, 60_000.0).is_err());
    }

    #[test]
    fn polygon_contains() {
        let sq: Vec<GeoPoint> = [(0.0, 0.0), (0.0, 1.0), (1.0, 1.0), (1.0, 0.0)]
            .iter()
            .map(|&(a, b)| GeoPoint::new(a, b).unwrap())
            .collect();
        let area = Area::polygon(sq).unwrap();
        assert!(area.contains(GeoPoint::new(0.5, 0.5).unwrap()));
        assert!(!area.contains(GeoPoint::new(1.5, 0.5).unwrap()));
        assert!(Area::polygon(vec![GeoPoint::new(0.0, 0.0).unwrap()]).is_err());
    }
}
