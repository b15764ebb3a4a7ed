"""Building canonical events without re-validating what the parser has just normalised.

`construct(cls, fields)` is `cls.model_construct(**fields)` for a complete field set, at a fraction of its
cost (pydantic's `model_construct` loops over aliases and defaults in Python, slower than validation
itself). The parsers always pass every field of the model; `tests/ingest/test_ingest_contract.py` checks
samples of every event family round-trip through `model_validate` unchanged.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

from shared.events import Event

E = TypeVar("E", bound=Event)

_new = object.__new__
# The instance slots BaseModel declares, set through their descriptors: a third cheaper than
# object.__setattr__, which first looks each name up along the model's MRO.
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__
# Every field is always set, so all instances of a family share one "fields set". Events are frozen:
# pydantic never mutates it in place (model_copy copies it first).
_ALL_FIELDS: dict[type[Event], set[str]] = {}


def construct(cls: type[E], fields: dict[str, Any]) -> E:
    """An instance of `cls` holding exactly `fields` (all of the model's fields, already normalised)."""
    fields_set = _ALL_FIELDS.get(cls)
    if fields_set is None:
        fields_set = _ALL_FIELDS[cls] = set(cls.model_fields)
    event = _new(cls)
    _set_dict(event, fields)
    _set_fields_set(event, fields_set)
    _set_extra(event, None)
    _set_private(event, None)
    return event
