"""The object census behind findings 19 and 20 of docs/benchmarks.md."""

from __future__ import annotations

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
    # Far more than the free space of the arenas the process had: most of them
    # sit where no small object sat at the first census.
    assert found["new_windows"] > 0
    assert dict(found["stranded_types"])[name] > 100_000


def test_type_names_do_not_trip_on_odd_types() -> None:
    assert census.type_name(1) == "builtins.int"
    assert census.type_name(int.__dict__["real"]) == "builtins.getset_descriptor"
