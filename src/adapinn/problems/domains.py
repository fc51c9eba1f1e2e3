"""Domains that sample themselves; moved to `adapinn.geometry` (re-exported here so the
existing imports keep working)."""

from adapinn.geometry.base import AbstractDomain  # noqa: F401
from adapinn.geometry.box import Box, Union  # noqa: F401
