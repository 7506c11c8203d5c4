"""Strict validation of raw server events against the installed `openai` package's own pydantic types.

The SDK itself parses leniently (construct without validation), so a run that "works" proves little;
here every raw frame is validated with `Model.model_validate_json(raw, strict=True)`, choosing the
model by the event's `type` literal from the package's `RealtimeServerEvent` union.
"""
from __future__ import annotations

import typing
from typing import get_args, get_origin

import pydantic


def _members(tp):
    origin = get_origin(tp)
    if origin is typing.Annotated:
        return _members(get_args(tp)[0])
    if origin is typing.Union:
        out = []
        for a in get_args(tp):
            out += _members(a)
        return out
    return [tp]


def _by_type(union) -> dict:
    table = {}
    for m in _members(union):
        ann = m.model_fields["type"].annotation
        for lit in get_args(ann):
            table[lit] = m
    return table


class StrictValidator:
    def __init__(self, union, dialect_name: str):
        self.table = _by_type(union)
        self.dialect_name = dialect_name

    def __call__(self, raw, ev: dict) -> list[str]:
        t = ev.get("type")
        model = self.table.get(t)
        if model is None:
            return [f"type {t!r} is not a server event of the {self.dialect_name} types in this openai package"]
        try:
            model.model_validate_json(raw, strict=True)
        except pydantic.ValidationError as e:
            return [
                f"{model.__name__}: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
                + (f" (got {err.get('input')!r:.120})" if err["type"] != "missing" else "")
                for err in _relevant(e.errors())
            ][:12]
        return []


def _relevant(errors):
    """Drop the noise from union members that plainly are not the intended one.

    In a union, pydantic reports every member's failures (loc contains the member's class name).
    A member whose `type` or `role` literal does not match is not what the server meant; keep the
    errors of the members whose discriminating literals matched (or all, if none did).
    """
    def branch(err):
        for i, part in enumerate(err["loc"]):
            if isinstance(part, str) and part[:1].isupper():
                return tuple(err["loc"][:i]), part, tuple(err["loc"][i + 1 :])
        return None

    wrong = set()
    for err in errors:
        b = branch(err)
        if b and b[2] in (("type",), ("role",)) and err["type"] == "literal_error":
            wrong.add((b[0], b[1]))
    groups = {}
    for err in errors:
        b = branch(err)
        if b:
            groups.setdefault(b[0], set()).add(b[1])
    out = []
    for err in errors:
        b = branch(err)
        if b and (b[0], b[1]) in wrong and not groups[b[0]] <= {x[1] for x in wrong if x[0] == b[0]}:
            continue
        out.append(err)
    return out


def ga_validator():
    from openai.types.realtime.realtime_server_event import RealtimeServerEvent

    return StrictValidator(RealtimeServerEvent, "GA (openai.types.realtime)")


def beta_validator():
    from openai.types.beta.realtime.realtime_server_event import RealtimeServerEvent

    return StrictValidator(RealtimeServerEvent, "beta (openai.types.beta.realtime)")
