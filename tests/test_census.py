"""The object census behind findings 19 and 20 of docs/benchmarks.md."""

from __future__ import annotations

from collections import Counter

from loadtests import census


class Marker:
    """A small object of a type nothing else in the process has."""

    __slots__ = ("number",)

    def __init__(self, number: int) -> None:
        self.number = number


def test_a_census_finds_what_was_made_since_the_first() -> None:
    first = census.take()
    made = [Marker(number) for number in range(200_000)]  # about 10 MiB of them

    found = census.compare(first, census.take())

    name = census.type_name(made[0])
    assert name == f"{Marker.__module__}.Marker"
    grown = {kind: (count, size) for kind, count, size in found["grown"]}
    assert grown[name][0] == 200_000
    assert grown[name][1] >= 200_000 * 32


def test_small_objects_where_none_were_are_counted_by_type() -> None:
    """Only windows that held no small object at the first census count."""
    first = census.Census(windows={1: Counter({"a.Old": 5})})
    later = census.Census(
        windows={
            1: Counter({"a.Old": 2, "a.New": 7}),  # an old window: not counted
            2: Counter({"a.New": 3, "a.Other": 1}),
            3: Counter({"a.New": 2}),
        }
    )

    found = census.compare(first, later)

    assert found["new_windows"] == 2
    assert found["stranded"] == 6
    assert found["stranded_types"] == [("a.New", 5), ("a.Other", 1)]


def test_type_names_do_not_trip_on_odd_types() -> None:
    assert census.type_name(1) == "builtins.int"
    assert census.type_name(int.__dict__["real"]) == "builtins.getset_descriptor"
