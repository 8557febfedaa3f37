"""Geospatial layers of the city registry: the layer catalogue (:mod:`.layers`), GeoJSON import
with validation and reprojection (:mod:`.geojson`), in-memory spatial queries (:mod:`.spatial`)
and the synthetic Kherson sample base (:mod:`.sample`). See docs/geospatial.md.

Only this package imports shapely, and only :mod:`.crs` imports pyproj."""
