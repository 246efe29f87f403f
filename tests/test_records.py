"""attnviz_cli.records against the standard library's frozen dataclasses, which records stand in for."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from typing import ClassVar

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from attnviz_cli.records import FrozenInstanceError, fields, is_record, record, replace


@record
class Point:
    x: int
    y: int = 0
    label: str = "p"
    UNITS: ClassVar[str] = "px"


@dataclasses.dataclass(frozen=True)
class PointDC:
    x: int
    y: int = 0
    label: str = "p"
    UNITS: ClassVar[str] = "px"


@record(eq=False)
class Holder:
    values: np.ndarray
    scale: bool

    def __post_init__(self) -> None:
        self.values.flags.writeable = False


@record(eq=False)
class Wider(Holder):
    extra: int = 3


def build(cls, args, kwargs):
    try:
        return cls(*args, **kwargs)
    except TypeError:
        return TypeError


@given(
    st.lists(st.integers(), max_size=4),
    st.dictionaries(st.sampled_from(["x", "y", "label", "z"]), st.integers(), max_size=3),
)
def test_arguments_bind_as_a_frozen_dataclass_binds_them(args, kwargs):
    ours, theirs = build(Point, args, kwargs), build(PointDC, args, kwargs)
    if theirs is TypeError:
        assert ours is TypeError
    else:
        assert (ours.x, ours.y, ours.label) == (theirs.x, theirs.y, theirs.label)
        assert repr(ours) == repr(theirs).replace("PointDC", "Point")


def test_equal_and_hashable_by_fields_and_type():
    assert Point(1, 2) == Point(1, 2, "p") and hash(Point(1, 2)) == hash(Point(1, 2, "p"))
    assert Point(1, 2) != Point(1, 3)
    assert Point(1) != PointDC(1)
    assert {Point(1), Point(1), Point(2)} == {Point(1), Point(2)}


def test_eq_false_compares_by_identity():
    a = Holder(np.zeros(2), True)
    assert a == a and a != Holder(a.values, True)
    assert hash(a) == object.__hash__(a)


def test_frozen_like_a_frozen_dataclass():
    p = Point(1)
    with pytest.raises(FrozenInstanceError, match="'x'"):
        p.x = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del p.y  # type: ignore[misc]
    assert p.x == 1


def test_inherited_fields_come_first_and_post_init_runs():
    w = Wider(np.ones(2), False)
    assert fields(w) == ("values", "scale", "extra") and w.extra == 3
    assert not w.values.flags.writeable
    assert repr(Wider(np.zeros(1), True, 5)) == "Wider(values=array([0.]), scale=True, extra=5)"


def test_classvars_are_not_fields():
    assert fields(Point) == ("x", "y", "label") and Point.UNITS == "px"


def test_replace_keeps_the_rest_and_runs_init():
    assert replace(Point(1, 2, "a"), y=5) == Point(1, 5, "a")
    with pytest.raises(TypeError, match="unexpected keyword argument 'z'"):
        replace(Point(1), z=3)


def test_errors_name_the_class_and_the_argument():
    with pytest.raises(TypeError, match=r"Point\(\) missing required argument 'x'"):
        Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="multiple values for argument 'x'"):
        Point(1, x=2)  # type: ignore[misc]
    with pytest.raises(TypeError, match="takes 3 arguments but 4 were given"):
        Point(1, 2, "a", 4)  # type: ignore[call-arg]


def test_class_definitions_dataclasses_refuse_are_refused():
    with pytest.raises(ValueError, match="mutable default"):
        @record
        class Bad:
            items: list = []  # noqa: RUF012
    with pytest.raises(TypeError, match="'b' without a default follows"):
        @record
        class Order:
            a: int = 0
            b: int  # type: ignore[misc]


def test_signature_and_is_record():
    assert str(inspect.signature(Point)) == str(inspect.signature(PointDC))
    assert is_record(Point) and is_record(Point(1)) and not is_record(PointDC(1))


def test_records_survive_pickle_and_copy_as_stream_workers_need():
    p = Point(1, 2, "a")
    for clone in (pickle.loads(pickle.dumps(p)), copy.copy(p), copy.deepcopy(p)):
        assert clone == p and clone is not p
        with pytest.raises(FrozenInstanceError):
            clone.x = 5  # type: ignore[misc]
    w = pickle.loads(pickle.dumps(Wider(np.arange(3.0), True)))
    assert w.values.tolist() == [0.0, 1.0, 2.0] and w.extra == 3
