"""What each config value may be, declared where its default is, and checked before any work.

A field's range rides on its type hint, so the dataclass (or the signature of a judge or a
protocol) stays the one place that says everything about a knob:

    steps: Count = 60                                   # a whole number >= 1
    noise: Annotated[float, within(0, 0.5)] = 0.0
    check_order: Annotated[str, one_of("first", "random")] = "first"

Rules across fields are declared once on the class (braces name another field):

    rules: ClassVar[Rules] = (
        rule("min_steps", "must be ≤ {max_steps}", lambda c: c.min_steps <= c.max_steps),
    )

`problems(cls, values)` lists what is wrong with a class's values (a config node or an object)
as one line each, `task.max_steps=0: must be a whole number ≥ 1`; `ensure` raises the first as a
`ConfigError`. `oversight.experiment.config.validate` runs them over a whole composed config.
Hydra and OmegaConf drop the `Annotated` extras (`typing.get_type_hints` strips them), so the
typed config sees plain `int` and `float`.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import string
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from oversight.errors import ConfigError

Problem = tuple[str, Any, str]
"""(key below the checked value, the offending value, what is allowed)"""


@dataclass(frozen=True)
class Check:
    """One constraint on one value. None (a knob left off) passes unless `required`."""

    ok: Callable[[Any], bool]
    allowed: str
    required: bool = False

    def __call__(self, value: Any) -> Iterator[Problem]:
        if value is None and not self.required:
            return
        try:
            good = value is not None and self.ok(value)
        except Exception:  # a value of the wrong kind in an untyped node ("abc" < 0)
            good = False
        if not good:
            yield "", value, self.allowed


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _fmt(x: float) -> str:
    return f"{x:g}"


def whole(lo: int) -> Check:
    ok = lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= lo  # noqa: E731
    return Check(ok, f"must be a whole number ≥ {lo}")


def at_least(lo: float) -> Check:
    return Check(lambda v: _number(v) and v >= lo, f"must be ≥ {_fmt(lo)}")


def above(lo: float) -> Check:
    return Check(lambda v: _number(v) and v > lo, f"must be > {_fmt(lo)}")


def within(lo: float, hi: float) -> Check:
    return Check(lambda v: _number(v) and lo <= v <= hi, f"must be in [{_fmt(lo)}, {_fmt(hi)}]")


def one_of(*choices: Any) -> Check:
    return Check(lambda v: v in choices, "must be one of " + ", ".join(map(repr, choices)))


def existing_dir() -> Check:
    return Check(lambda v: Path(v).expanduser().is_dir(), "must be an existing directory")


def required(what: str) -> Check:
    return Check(lambda v: True, f"must be set: {what}", required=True)


def each(key: str, check: Check) -> Callable[[Any], Iterator[Problem]]:
    """`check` on `item[key]` of every item of a list (a rater pool's member weights)."""

    def problems(items: Any) -> Iterator[Problem]:
        for i, item in enumerate(items or ()):
            for sub, value, allowed in check(item.get(key) if isinstance(item, Mapping) else None):
                yield f"[{i}].{key}{sub}", value, allowed

    return problems


# The common ranges, as types: read `steps: Count` as "steps is a whole number ≥ 1".
Count = Annotated[int, whole(1)]
"""a count where zero is meaningless"""
Natural = Annotated[int, whole(0)]
"""a count where zero means none, or off"""
NonNeg = Annotated[float, at_least(0)]
"""a coefficient, a duration"""
Positive = Annotated[float, above(0)]
"""a learning rate, a temperature, a clipping range"""
Fraction = Annotated[float, within(0, 1)]
"""a probability, a rate"""


@dataclass(frozen=True)
class Rule:
    """A constraint across fields, reported on `key`; `allowed` names other fields in braces
    (shown with their values). `ok` and `shown` read the fields as attributes."""

    key: str
    allowed: str
    ok: Callable[[Any], bool]
    shown: Callable[[Any], Any] | None = None
    """the value to report, when not the field `key` itself"""


rule = Rule
Rules = tuple[Rule, ...]


@dataclass(frozen=True)
class _Declared:
    checks: dict[str, tuple[Callable[[Any], Iterator[Problem]], ...]]
    nested: dict[str, type]
    """fields that hold a settings dataclass, checked in turn"""
    rules: Rules


def _extras(hint: Any) -> tuple[list[Any], Any]:
    """The checks in a hint and the plain type under them (looking inside `X | None`)."""
    if typing.get_origin(hint) is Annotated:
        return [m for m in hint.__metadata__ if callable(m)], hint.__origin__
    args = typing.get_args(hint)
    if len(args) == 2 and type(None) in args:
        (inner,) = (a for a in args if a is not type(None))
        return _extras(inner)
    return [], hint


@functools.cache
def declared(cls: type) -> _Declared:
    """What `cls` declares about the arguments it takes (as `schema_of` reads its signature)."""
    # the fields' hints, or those of an `__init__` of its own (a pool's, an oracle's)
    owner = next(c for c in cls.__mro__ if "__init__" in vars(c))
    own_init = "__dataclass_fields__" not in vars(owner)
    hints = typing.get_type_hints(owner.__init__ if own_init else cls, include_extras=True)
    checks: dict[str, tuple[Any, ...]] = {}
    nested: dict[str, type] = {}
    for p in inspect.signature(cls).parameters.values():
        found, plain = _extras(hints.get(p.name, Any))
        if found:
            checks[p.name] = tuple(found)
        if dataclasses.is_dataclass(plain) and not inspect.isabstract(plain):
            nested[p.name] = plain  # type: ignore[assignment]
    return _Declared(checks, nested, tuple(getattr(cls, "rules", ())))


_ABSENT = object()


def _get(values: Any, name: str) -> Any:
    """A value from a mapping (a config node: read, and resolved, only when checked) or an
    object."""
    if isinstance(values, Mapping):
        return values[name] if name in values else _ABSENT
    return getattr(values, name, _ABSENT)


class _View:
    """Attribute access to `values` for rules, whatever they are."""

    def __init__(self, values: Any) -> None:
        self._values = values

    def __getattr__(self, name: str) -> Any:
        value = _get(self._values, name)
        if value is _ABSENT:
            raise AttributeError(name)
        return value


def show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def problems(cls: type, values: Any, prefix: str = "") -> Iterator[str]:
    """One line per value of `values` that breaks what `cls` declares, keys under `prefix`."""
    d = declared(cls)
    found = False
    for name, checks in d.checks.items():
        value = _get(values, name)
        if value is _ABSENT:
            continue
        for check in checks:
            for sub, bad, allowed in check(value):
                found = True
                yield f"{prefix}{name}{sub}={show(bad)}: {allowed}"
    for name, inner in d.nested.items():
        value = _get(values, name)
        if value is not _ABSENT and value is not None:
            for line in problems(inner, value, f"{prefix}{name}."):
                found = True
                yield line
    if found:  # a rule between values already out of range would only repeat it
        return
    view = _View(values)
    for r in d.rules:
        try:
            if r.ok(view):
                continue
            value = r.shown(view) if r.shown else getattr(view, r.key)
        except Exception:  # a field it reads is not set yet, or is not even of its type: the
            continue  # field's own check, or the constructor, reports that
        names = {f: f"{prefix}{f}={show(_get(values, f))}" for f in _placeholders(r.allowed)}
        yield f"{prefix}{r.key}={show(value)}: {r.allowed.format(**names)}"


def _placeholders(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


def ensure(obj: Any, values: Any = None) -> None:
    """Raise the first problem with `obj`'s settings (`values`: its arguments, when `obj` does
    not keep them as attributes) as a ConfigError: constructors call it, so a part built in code
    is held to what its config would be."""
    for line in problems(type(obj), obj if values is None else values):
        raise ConfigError(line)
