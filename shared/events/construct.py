"""Event instances from fields already known to be valid, without running pydantic's validator.

`construct(cls, fields)` is `cls.model_construct(**fields)` for a complete field set, at a fraction of its
cost (pydantic's `model_construct` loops over aliases and defaults in Python, slower than validation
itself), and it needs no validator: with `envelope.MODEL_CONFIG` (deferred build) a process that only
constructs events never builds one. Callers pass every field of the model, in its declaration order;
`tests/ingest/test_ingest_contract.py` and `tests/safety_rules/test_signal_construct.py` check that what they
build round-trips through `model_validate` unchanged.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)

_new = object.__new__
# The instance slots BaseModel declares, set through their descriptors: a third cheaper than
# object.__setattr__, which first looks each name up along the model's MRO.
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__
# Where every field is set, all instances of a model share one "fields set". Models are frozen: pydantic
# never mutates it in place (model_copy copies it first).
_ALL_FIELDS: dict[type[BaseModel], set[str]] = {}


def construct(cls: type[M], fields: dict[str, Any], fields_set: set[str] | None = None) -> M:
    """An instance of `cls` holding exactly `fields` (all of the model's fields, already valid).

    `fields_set`: the fields counted as explicitly set (`model_fields_set`), as validating only those
    keyword arguments would count them; all of them by default."""
    if fields_set is None:
        fields_set = _ALL_FIELDS.get(cls)
        if fields_set is None:
            fields_set = _ALL_FIELDS[cls] = set(cls.model_fields)
    instance = _new(cls)
    _set_dict(instance, fields)
    _set_fields_set(instance, fields_set)
    _set_extra(instance, None)
    _set_private(instance, None)
    return instance
