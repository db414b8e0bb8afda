"""Web-mercator tile of a Cloud-Optimized GeoTIFF, as a base64 PNG, with band statistics.

event: {"url": "https://.../cog.tif", "z": 7, "x": 64, "y": 63, "size": 256}
"""

from __future__ import annotations

import base64
from typing import Any

import mercantile
import numpy
import rasterio
from rasterio.enums import Resampling
from rasterio.io import MemoryFile
from rasterio.transform import from_bounds
from rasterio.vrt import WarpedVRT


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    z, x, y = int(event["z"]), int(event["x"]), int(event["y"])
    size = int(event.get("size", 256))
    bounds = mercantile.xy_bounds(x, y, z)
    # A virtual warp straight onto the tile's grid: GDAL reads only the COG blocks (and
    # overview level) the tile needs; pixels outside the source are 0.
    with (
        rasterio.open(event["url"]) as src,
        WarpedVRT(
            src,
            crs="EPSG:3857",
            transform=from_bounds(*bounds, size, size),
            width=size,
            height=size,
            resampling=Resampling.bilinear,
            nodata=0,
        ) as vrt,
    ):
        data = vrt.read()
    stats = [
        {"band": i + 1, "min": float(b.min()), "max": float(b.max()), "mean": float(b.mean())}
        for i, b in enumerate(data)
    ]
    # PNG holds 8 bits a sample: scale the tile's own range into 0..255.
    low, high = float(data.min()), float(data.max())
    scaled = (data - low) * (255.0 / (high - low)) if high > low else numpy.zeros_like(data)
    with MemoryFile() as memfile:
        with memfile.open(
            driver="PNG", width=size, height=size, count=data.shape[0], dtype="uint8"
        ) as png:
            png.write(scaled.astype("uint8"))
        tile = base64.b64encode(memfile.read()).decode("ascii")
    return {
        "tile": {"z": z, "x": x, "y": y, "size": size, "png_base64": tile},
        "stats": stats,
        "request_id": getattr(context, "aws_request_id", None),
    }
