"""Frozen record classes, as ``@dataclass(frozen=True)`` makes them, at a thirtieth of the start-up cost.

The standard library's dataclasses write each class's ``__init__``, ``__repr__``, ``__setattr__``,
``__delattr__`` (and ``__eq__`` and ``__hash__``) as source text and compile it with ``exec`` when the
class is created: about 0.7 ms a class on Python 3.11, so 14 ms for the twenty result classes that
every ``attn`` run creates, a tenth of the start-up of a JSON run. :func:`record` gives the same
classes from methods written once, here:

- ``__init__`` takes the fields in order, by position or keyword, the later ones with their class
  defaults; then ``__post_init__``, if the class has one (attnviz's freeze their arrays there);
- assigning or deleting an attribute raises :class:`FrozenInstanceError`, as for a frozen dataclass;
- ``__repr__`` lists the fields; with ``eq=True``, instances are equal when their types and fields
  are, and hashable; with ``eq=False`` (classes that hold arrays) they compare by identity;
- :func:`replace`, :func:`fields` and :func:`is_record` do what dataclasses' functions of those
  names do; ``inspect.signature`` gives the real parameters.

Type checkers read a record as a frozen dataclass (PEP 681's ``dataclass_transform``). A field is an
annotated class attribute; ``ClassVar`` annotations are not fields. Every frozen class of attnviz_cli
is a record, so that they all behave alike (tests use dataclasses freely).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform, overload

T = TypeVar("T")
_MISSING: Any = object()


class FrozenInstanceError(AttributeError):
    """An attempt to change a field of a record."""


class _Signature:
    """``cls.__signature__``, built on first use: only ``help()`` and ``inspect.signature`` ask for it,
    and importing ``inspect`` costs a library user without Typer 8 ms."""

    def __get__(self, instance: object, owner: type) -> Any:
        import inspect

        annotations: dict[str, Any] = {}
        for cls in reversed(owner.__mro__):
            annotations |= cls.__dict__.get("__annotations__", {})  # noqa: RUF063
        parameters = [
            inspect.Parameter(
                name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=annotations[name],
                default=inspect.Parameter.empty if default is _MISSING else default,
            )
            for name, default in owner.__record_fields__.items()  # type: ignore[attr-defined]
        ]
        return inspect.Signature(parameters, return_annotation=None)


def _fields(cls: type) -> dict[str, Any]:
    """Field name -> default (or _MISSING), the base classes' fields first, as dataclasses order them."""
    fields: dict[str, Any] = {}
    for base in reversed(cls.__mro__[1:]):
        fields.update(base.__dict__.get("__record_fields__", {}))
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():  # noqa: RUF063 (not inspect's: its import costs more than a record)
        if not str(annotation).startswith(("ClassVar", "typing.ClassVar")):
            fields[name] = default = cls.__dict__.get(name, _MISSING)
            if isinstance(default, (list, dict, set)):
                raise ValueError(f"{cls.__name__}.{name}: a mutable default would be shared by every instance")
    required = [name for name, default in fields.items() if default is _MISSING]
    defaulted = [name for name, default in fields.items() if default is not _MISSING]
    if defaulted and required and list(fields).index(required[-1]) > list(fields).index(defaulted[0]):
        raise TypeError(f"{cls.__name__}: field {required[-1]!r} without a default follows fields with defaults")
    return fields


def _init(cls: type, fields: dict[str, Any]) -> Callable[..., None]:
    names = tuple(fields)
    defaults = {name: default for name, default in fields.items() if default is not _MISSING}
    post_init = getattr(cls, "__post_init__", None)

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(names):
            raise TypeError(f"{cls.__name__}() takes {len(names)} arguments but {len(args)} were given")
        values = dict(zip(names, args, strict=False))  # fewer args than names: the rest by keyword or default
        for name in kwargs:
            if name not in fields:
                raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {name!r}")
            if name in values:
                raise TypeError(f"{cls.__name__}() got multiple values for argument {name!r}")
        values |= kwargs
        if len(values) < len(names):
            missing = [name for name in names if name not in values and name not in defaults]
            if missing:
                raise TypeError(f"{cls.__name__}() missing required argument {missing[0]!r}")
            values = {name: values[name] if name in values else defaults[name] for name in names}
        self.__dict__.update(values)
        if post_init is not None:
            post_init(self)

    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    return __init__


def _setattr(self: Any, name: str, value: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r} of a {type(self).__name__}")


def _delattr(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r} of a {type(self).__name__}")


def _repr(self: Any) -> str:
    fields = ", ".join(f"{name}={self.__dict__[name]!r}" for name in type(self).__record_fields__)
    return f"{type(self).__qualname__}({fields})"


def _key(self: Any) -> tuple[Any, ...]:
    return tuple(self.__dict__[name] for name in type(self).__record_fields__)


def _eq(self: Any, other: object) -> bool:
    if type(other) is not type(self):
        return NotImplemented
    return _key(self) == _key(other)


def _hash(self: Any) -> int:
    return hash(_key(self))


@overload
def record(cls: type[T], /) -> type[T]: ...
@overload
def record(*, eq: bool = True) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(frozen_default=True)
def record(cls: type[T] | None = None, /, *, eq: bool = True) -> type[T] | Callable[[type[T]], type[T]]:
    """Make ``cls`` a frozen record (see the module's docstring); ``eq=False`` for classes holding arrays."""

    def make(cls: type[T]) -> type[T]:
        fields = _fields(cls)
        methods: dict[str, Any] = {
            "__record_fields__": fields, "__init__": _init(cls, fields), "__setattr__": _setattr,
            "__delattr__": _delattr, "__repr__": _repr, "__signature__": _Signature(),
        }
        if eq:
            methods |= {"__eq__": _eq, "__hash__": _hash}
        for name, method in methods.items():
            type.__setattr__(cls, name, method)
        return cls

    return make if cls is None else make(cls)


def replace(instance: T, /, **changes: Any) -> T:
    """A copy of record ``instance`` with ``changes`` made to its fields (as ``dataclasses.replace``)."""
    fields = type(instance).__record_fields__  # type: ignore[attr-defined]
    return type(instance)(**{name: instance.__dict__[name] for name in fields} | changes)


def is_record(obj: object) -> bool:
    """Whether ``obj`` is a record or a record class."""
    return hasattr(obj, "__record_fields__")


def fields(obj: object) -> tuple[str, ...]:
    """The field names of a record or record class, in order (as ``dataclasses.fields``, names only)."""
    return tuple(obj.__record_fields__)  # type: ignore[attr-defined]
