"""Point query over a Cloud-Optimized GeoTIFF: values under lon/lat points, with their tiles.

Runs on the geo layer (rasterio, pyproj, shapely from /opt/python); this package only adds
mercantile. event: {"url": "https://.../cog.tif", "points": [[lon, lat], ...], "zoom": 8}
"""

from __future__ import annotations

from typing import Any

import mercantile
import rasterio
from pyproj import Transformer
from shapely.geometry import MultiPoint


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    points = [(float(lon), float(lat)) for lon, lat in event["points"]]
    zoom = int(event.get("zoom", 8))
    with rasterio.open(event["url"]) as src:
        to_src = Transformer.from_crs("EPSG:4326", src.crs, always_xy=True)
        coords = [to_src.transform(lon, lat) for lon, lat in points]
        values = [[float(v) for v in sample] for sample in src.sample(coords)]
    hull = MultiPoint(points).convex_hull
    return {
        "values": values,
        "tiles": [list(mercantile.tile(lon, lat, zoom)) for lon, lat in points],
        "hull_area_deg2": hull.area,
        "function": getattr(context, "function_name", None),
    }
