"""Fixtures of the ingest parser tests."""

from __future__ import annotations

import pytest
from ingest_builders import make_config

from services.ingest.domain import ParserConfig


@pytest.fixture
def config() -> ParserConfig:
    """Two configured studies; ANAKINRA-AD is the default for HL7 and FHIR input."""
    return make_config()
