"""ingest's own settings: the MLLP listener, the source-system tokens, input limits and the study.

Read like every fragment (process environment first, then the env file). Where the listeners bind is
``TRIALWATCH_BIND_HOST`` (``shared.settings.ListenSettings``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator

from shared.settings import MIN_TOKEN_LENGTH, SettingsFragment, refuse_placeholder

Source = Literal["hl7", "fhir", "records"]
MIB = 1 << 20


class IngestSettings(SettingsFragment):
    mllp_port: int = Field(default=2575, validation_alias="TRIALWATCH_MLLP_PORT")
    mllp_tls_cert: Path | None = Field(default=None, validation_alias="TRIALWATCH_MLLP_TLS_CERT")
    mllp_tls_key: Path | None = Field(default=None, validation_alias="TRIALWATCH_MLLP_TLS_KEY")
    mllp_tls_ca: Path | None = Field(default=None, validation_alias="TRIALWATCH_MLLP_TLS_CA")
    mllp_max_message_bytes: int = Field(default=MIB, ge=1024, validation_alias="TRIALWATCH_MLLP_MAX_MESSAGE_BYTES")
    mllp_message_timeout: float = Field(default=30.0, gt=0, validation_alias="TRIALWATCH_MLLP_MESSAGE_TIMEOUT")
    mllp_idle_timeout: float = Field(default=600.0, gt=0, validation_alias="TRIALWATCH_MLLP_IDLE_TIMEOUT")
    mllp_max_connections: int = Field(default=64, ge=1, validation_alias="TRIALWATCH_MLLP_MAX_CONNECTIONS")
    http_max_body_bytes: int = Field(default=16 * MIB, ge=1024, validation_alias="TRIALWATCH_INGEST_MAX_BODY_BYTES")
    # Outbox rows the relay publishes per round (one record batch per partition); smaller rounds trade
    # throughput for shorter publish-to-mark windows.
    relay_batch: int = Field(default=500, ge=1, le=10_000, validation_alias="TRIALWATCH_INGEST_RELAY_BATCH")
    token_hl7: SecretStr | None = Field(default=None, validation_alias="TRIALWATCH_SOURCE_TOKEN_HL7")
    token_fhir: SecretStr | None = Field(default=None, validation_alias="TRIALWATCH_SOURCE_TOKEN_FHIR")
    token_records: SecretStr | None = Field(default=None, validation_alias="TRIALWATCH_SOURCE_TOKEN_RECORDS")
    study: Path | None = Field(default=None, validation_alias="TRIALWATCH_STUDY")

    @field_validator("token_hl7", "token_fhir", "token_records")
    @classmethod
    def _a_real_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        refuse_placeholder("TRIALWATCH_SOURCE_TOKEN_*", value.get_secret_value())
        if len(value.get_secret_value()) < MIN_TOKEN_LENGTH:
            raise ValueError(f"TRIALWATCH_SOURCE_TOKEN_* must be at least {MIN_TOKEN_LENGTH} characters")
        return value

    @model_validator(mode="after")
    def _tls_is_complete(self) -> Self:
        given = [self.mllp_tls_cert, self.mllp_tls_key, self.mllp_tls_ca]
        if any(given) and not all(given):
            raise ValueError("MLLP TLS needs all of TRIALWATCH_MLLP_TLS_CERT, _KEY and _CA (client certificates)")
        return self

    @property
    def mllp_uses_tls(self) -> bool:
        return self.mllp_tls_cert is not None

    def source_token(self, source: Source) -> SecretStr | None:
        tokens = {"hl7": self.token_hl7, "fhir": self.token_fhir, "records": self.token_records}
        return tokens[source]
