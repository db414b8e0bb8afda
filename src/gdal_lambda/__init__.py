"""gdal-lambda: GDAL for AWS Lambda, built from pinned sources.

One module per concern: versions (the matrix), sources (fetching tarballs), images (Docker
builds), layer (layer zips), package (function packages), publish (AWS). tasks.py at the
repository root parses arguments and calls these.
"""

__version__ = "0.1.0"
