"""Unified Social Credit Codes (统一社会信用代码, GB 32100-2015), checked in one place.

Enterprise certification binds a portal user to an enterprise named by its code,
and one enterprise may be bound at most once, so every code that reaches storage
or a comparison must first pass through ``check_uscc``: it normalises what a person
typed and refuses codes whose check characters do not add up.

The 18 characters are:

- 1: registration authority (登记管理部门代码), 2: entity type (机构类别代码);
- 3-8: administrative division (登记管理机关行政区划码), six digits;
- 9-17: the organisation code (组织机构代码, GB 11714-1997): eight body characters
  and their check character;
- 18: the check character of the whole code.

Positions 1 and 2 are only held to the alphabet: the table of authorities and
entity types is amended by regulation, and refusing a real enterprise because
this table lags would be worse than accepting an unusual pair.
"""

from __future__ import annotations

import unicodedata
from typing import Final

from server.errors import Invalid

LENGTH: Final = 18

# The code's alphabet: digits and capitals without I, O, Z, S and V. A character's
# value in the check sums is its index here.
ALPHABET: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"
VALUES: Final = {char: index for index, char in enumerate(ALPHABET)}

# Weights of the final check character over positions 1-17 (3**i mod 31).
CODE_WEIGHTS: Final = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

# Weights of the organisation code's check over its eight body characters.
ORG_WEIGHTS: Final = (3, 7, 9, 10, 5, 8, 4, 2)

RULES: Final = (
    "length",
    "character",
    "division",
    "organisation_check",
    "check_character",
)


class BadUscc(Invalid):
    """422 ``bad_uscc``: the text is not a valid code.

    The details name the field and the rule that failed: ``length``,
    ``character``, ``division``, ``organisation_check`` or ``check_character``
    (and ``position``, counted from 1, when one character is to blame).
    """

    code = "bad_uscc"
    message = "统一社会信用代码不正确。"

    def __init__(
        self,
        rule: str,
        message: str,
        *,
        field: str = "uscc",
        position: int | None = None,
    ) -> None:
        details: dict[str, object] = {field: rule, "rule": rule}
        if position is not None:
            details["position"] = position
        super().__init__(message, details=details)
        self.rule = rule
        self.position = position


def normalise_uscc(text: str) -> str:
    """The code as stored: full-width forms folded, spaces removed, upper-case.

    Chinese input methods often type full-width letters and digits (Ａ, １) and
    ideographic spaces; NFKC folds them to their ASCII forms.
    """
    folded = unicodedata.normalize("NFKC", text)
    return "".join(folded.split()).upper()


def _org_value(char: str) -> int:
    """A character's value in the organisation-code check: 0-9, then A=10 ... Z=35."""
    if char.isdigit():
        return int(char)
    return ord(char) - ord("A") + 10


def organisation_check_character(body: str) -> str:
    """The GB 11714 check character of eight organisation-code body characters."""
    total = sum(_org_value(c) * w for c, w in zip(body, ORG_WEIGHTS, strict=True))
    value = 11 - total % 11
    if value == 10:
        return "X"
    if value == 11:
        return "0"
    return str(value)


def check_character(first17: str) -> str:
    """The GB 32100 check character (position 18) of the first 17 characters."""
    total = sum(VALUES[c] * w for c, w in zip(first17, CODE_WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def check_uscc(text: str, *, field: str = "uscc") -> str:
    """The normalised code, or BadUscc naming the first rule it breaks.

    The rules are checked in the order a person can act on them: length, then
    characters, then the division digits, then the two check characters.
    """
    code = normalise_uscc(text)
    if len(code) != LENGTH:
        raise BadUscc(
            "length", f"统一社会信用代码应为18位，当前为{len(code)}位。", field=field
        )
    for position, char in enumerate(code, start=1):
        if char not in VALUES:
            shown = char if char.isprintable() else "?"
            raise BadUscc(
                "character",
                f"第{position}位字符“{shown}”不能出现在统一社会信用代码中"
                "（只含数字和除I、O、Z、S、V以外的大写字母）。",
                field=field,
                position=position,
            )
    for position in range(3, 9):
        if not code[position - 1].isdigit():
            raise BadUscc(
                "division",
                f"第3至8位是行政区划码，应为数字（第{position}位不是）。",
                field=field,
                position=position,
            )
    if organisation_check_character(code[8:16]) != code[16]:
        raise BadUscc(
            "organisation_check",
            "第9至17位的组织机构代码校验不通过，请核对。",
            field=field,
            position=17,
        )
    if check_character(code[:17]) != code[17]:
        raise BadUscc(
            "check_character",
            "统一社会信用代码的校验码（第18位）不正确，请核对。",
            field=field,
            position=18,
        )
    return code


def is_valid_uscc(text: str) -> bool:
    """Whether check_uscc would accept text."""
    try:
        check_uscc(text)
    except BadUscc:
        return False
    return True
