"""Fixtures of the publishing and push tests, defined in publish_support.py, registered here."""

from publish_support import aws, moto, moto_endpoint, proxy  # noqa: F401
