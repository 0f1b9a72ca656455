"""Unified Social Credit Codes: real codes pass, every single-character change fails."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.errors import Invalid
from server.uscc import (
    ALPHABET,
    RULES,
    BadUscc,
    check_character,
    check_uscc,
    is_valid_uscc,
    normalise_uscc,
    organisation_check_character,
)

# Codes printed on the business licences of well-known organisations (public
# registration records). Each one was checked against the algorithm before it
# was kept here; the two universities are 事业单位 (entity type 12), the rest
# enterprises (91).
REAL_CODES = {
    "北京百度网讯科技有限公司": "91110000802100433B",
    "深圳市腾讯计算机系统有限公司": "91440300708461136T",
    "阿里巴巴（中国）有限公司": "91330100716105852F",
    "华为技术有限公司": "914403001922038216",
    "小米科技有限责任公司": "91110108551385082Q",
    "北京京东世纪贸易有限公司": "911103026605015136",
    "北京三快在线科技有限公司": "91110108558521630L",
    "联想（北京）有限公司": "91110108700000458B",
    "贵州茅台酒股份有限公司": "91520000214434146R",
    "中国工商银行股份有限公司": "91100000100003962T",
    "中国石油天然气股份有限公司": "91110000710925462X",
    "中国石油化工股份有限公司": "91110000710926094P",
    "比亚迪股份有限公司": "91440300192317458F",
    "中国平安保险（集团）股份有限公司": "91440300100012316L",
    "珠海格力电器股份有限公司": "91440400192548256N",
    "万科企业股份有限公司": "91440300192181490G",
    "招商银行股份有限公司": "9144030010001686XA",
    "中国建设银行股份有限公司": "911100001000044477",
    "清华大学": "12100000400000624D",
    "北京大学": "12100000400002259P",
}

# A few substitutes per position: neighbours in the alphabet plus fixed picks.
SUBSTITUTES = "019AXY"


def changed(code: str, position: int, char: str) -> str:
    """code with the character at position (0-based) replaced by char."""
    return code[:position] + char + code[position + 1 :]


@pytest.mark.parametrize("code", REAL_CODES.values(), ids=REAL_CODES.keys())
def test_real_codes_are_valid(code: str) -> None:
    assert check_uscc(code) == code
    assert is_valid_uscc(code)


@pytest.mark.parametrize("code", REAL_CODES.values(), ids=REAL_CODES.keys())
def test_any_single_change_to_a_real_code_fails(code: str) -> None:
    """Every position, several substitutes each: never a valid code."""
    tried = 0
    for position, original in enumerate(code):
        index = ALPHABET.index(original)
        picks = {ALPHABET[(index + 1) % 31], ALPHABET[index - 1], *SUBSTITUTES}
        for char in sorted(picks - {original}):
            with pytest.raises(BadUscc):
                check_uscc(changed(code, position, char))
            tried += 1
    assert tried >= 18 * 5


@pytest.mark.parametrize("code", REAL_CODES.values(), ids=REAL_CODES.keys())
def test_swapping_two_neighbours_fails(code: str) -> None:
    """Any two different neighbours among the first 17 characters."""
    for position in range(16):
        pair = code[position + 1] + code[position]
        swapped = code[:position] + pair + code[position + 2 :]
        if swapped != code:
            assert not is_valid_uscc(swapped), swapped


def test_lower_case_and_spaces_are_normalised() -> None:
    assert check_uscc(" 9111 0000 8021 0043 3b ") == "91110000802100433B"
    assert normalise_uscc("91110000802100433b\t") == "91110000802100433B"


def test_full_width_characters_and_ideographic_spaces_are_folded() -> None:
    typed = "９１１１００００８０２１００４３３Ｂ\u3000"
    assert check_uscc(typed) == "91110000802100433B"


@pytest.mark.parametrize(
    ("text", "rule", "position"),
    [
        ("9111000080210043", "length", None),
        ("91110000802100433BB", "length", None),
        ("", "length", None),
        ("91110000802100433I", "character", 18),
        ("9O110000802100433B", "character", 2),
        ("911100008021004Z3B", "character", 16),
        ("91110000802100433-", "character", 18),
        ("91A10000802100433B", "division", 3),
        ("91110000802100434B", "organisation_check", 17),
        ("91110000802100433C", "check_character", 18),
    ],
)
def test_the_error_names_the_rule(text: str, rule: str, position: int | None) -> None:
    with pytest.raises(BadUscc) as caught:
        check_uscc(text)
    error = caught.value
    assert isinstance(error, Invalid)
    assert (error.status, error.code, error.rule) == (422, "bad_uscc", rule)
    assert error.details["uscc"] == rule and error.details["rule"] == rule
    assert error.details.get("position") == position
    assert error.message.endswith("。")


def test_the_field_name_can_be_chosen() -> None:
    with pytest.raises(BadUscc) as caught:
        check_uscc("123", field="enterprise_uscc")
    assert caught.value.details["enterprise_uscc"] == "length"


def test_organisation_check_maps_ten_and_eleven() -> None:
    """Remainder 1 gives 10 (X), remainder 0 gives 11 (0)."""
    assert organisation_check_character("10001686") == "X"
    assert organisation_check_character("00000000") == "0"


# -- property: a generated valid code breaks under any one change ------------------

BODY_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"


@st.composite
def valid_codes(draw: st.DrawFn) -> str:
    """A code that follows every rule: any authority, type and organisation body."""
    head = draw(st.text(ALPHABET, min_size=2, max_size=2))
    division = draw(st.text("0123456789", min_size=6, max_size=6))
    body = draw(st.text(BODY_CHARS, min_size=8, max_size=8))
    first17 = head + division + body + organisation_check_character(body)
    return first17 + check_character(first17)


@given(valid_codes())
def test_generated_codes_are_valid(code: str) -> None:
    assert check_uscc(code) == code


@given(valid_codes(), st.integers(0, 17), st.sampled_from(ALPHABET))
def test_any_single_character_change_fails(code: str, position: int, char: str) -> None:
    if code[position] == char:
        char = ALPHABET[(ALPHABET.index(char) + 1) % len(ALPHABET)]
    assert not is_valid_uscc(changed(code, position, char))


@given(st.text(max_size=30))
def test_arbitrary_text_is_either_a_code_or_a_bad_uscc(text: str) -> None:
    try:
        code = check_uscc(text)
    except BadUscc as error:
        assert error.rule in RULES
    else:
        assert len(code) == 18 and set(code) <= set(ALPHABET)
