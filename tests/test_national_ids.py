"""Every national ID type the kiosk accepts, refusals that name the accepted types, and the
personal-data guard of event bodies for each type.

Valid numbers are built here from the standard (GB 11643-1999: ISO 7064 MOD 11-2 over the
first 17 digits), not with the code under test.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from node.events import personal_data_in
from onestop import identity
from onestop.identity import FieldError, validate_id_number
from tests.conftest import PHONE

TODAY = dt.date(2026, 12, 1)


def mod11_2(body: str) -> str:
    """ISO 7064 MOD 11-2 check character of 17 digits: weights 2**(17 - i) mod 11."""
    assert len(body) == 17 and body.isdigit()
    total = sum(int(d) * (2 ** (17 - i) % 11) for i, d in enumerate(body))
    value = (12 - total % 11) % 11
    return "X" if value == 10 else str(value)


def number(body: str) -> str:
    return body + mod11_2(body)


def wrong_check(body: str) -> str:
    good = mod11_2(body)
    return body + next(c for c in "0123456789X" if c != good)


# Resident ID card (居民身份证): region, birth date, sequence.
RESIDENT = number("110105" + "19491231" + "002")
RESIDENT_X = next(
    n for n in (number("370102" + "19850612" + f"{s:03d}") for s in range(1000)) if n[-1] == "X"
)
# Residence permits for Hong Kong, Macao and Taiwan residents (港澳台居民居住证).
HONG_KONG = number("810000" + "19900823" + "002")
MACAO = number("820000" + "20010305" + "011")
TAIWAN = number("830000" + "19880715" + "018")
# Foreigner's permanent residence ID card, 2023 (外国人永久居留身份证): 9, issuing province,
# ISO 3166-1 numeric nationality, birth date, sequence.
FOREIGNER_US = number("9" + "31" + "840" + "19850612" + "123")  # Shanghai, United States
FOREIGNER_JP = number("9" + "11" + "392" + "19700101" + "004")  # Beijing, Japan

VALID = {
    "resident": RESIDENT,
    "resident-x": RESIDENT_X,
    "hong-kong": HONG_KONG,
    "macao": MACAO,
    "taiwan": TAIWAN,
    "foreigner-us": FOREIGNER_US,
    "foreigner-jp": FOREIGNER_JP,
}

ACCEPTED_ZH = "可使用居民身份证、港澳台居民居住证或外国人永久居留身份证"
ACCEPTED_EN = (
    "accepted are the resident ID card, the residence permit for Hong Kong, Macao and "
    "Taiwan residents and the foreigner's permanent residence ID card"
)


def refusal(value: str) -> FieldError:
    with pytest.raises(FieldError) as exc:
        validate_id_number(value, TODAY)
    return exc.value


def test_the_standard_check_character_is_computed_right() -> None:
    # The worked example of GB 11643-1999 and a number printed in python-stdnum's docs.
    assert mod11_2("11010519491231002") == "X"
    assert mod11_2("36042619910101007") == "1"


@pytest.mark.parametrize("value", VALID.values(), ids=VALID.keys())
def test_every_accepted_type_is_accepted(value: str) -> None:
    assert validate_id_number(value, TODAY) == value
    assert validate_id_number(f" {value.lower()} ", TODAY) == value
    assert identity.is_id_number(value)
    assert identity.birth_date(value) == dt.date(
        int(value[6:10]), int(value[10:12]), int(value[12:14])
    )


def test_types_are_told_apart() -> None:
    assert identity.id_type(RESIDENT) == identity.RESIDENT
    assert {identity.id_type(n) for n in (HONG_KONG, MACAO, TAIWAN)} == {identity.PERMIT}
    assert identity.id_type(FOREIGNER_US) == identity.FOREIGNER
    assert identity.age_on(FOREIGNER_US, TODAY) == 41
    assert identity.mask_id(TAIWAN) == "830000********" + TAIWAN[-4:]


@pytest.mark.parametrize(
    "value",
    [
        "110105491231002",  # first-generation 15-digit card
        "E12345678",  # a passport number
        RESIDENT + "1",
    ],
)
def test_a_wrong_length_names_the_accepted_types(value: str) -> None:
    err = refusal(value)
    assert ACCEPTED_ZH in err.text.text("zh") and "18位" in err.text.text("zh")
    assert ACCEPTED_EN in err.message and "18 characters" in err.message


@pytest.mark.parametrize(
    "body",
    [
        "840000" + "19900823" + "002",  # no such region, and no such permit
        "000000" + "19900823" + "002",
        "110199" + "19491231" + "002",  # no such county in Beijing
    ],
)
def test_an_unknown_region_names_the_accepted_types(body: str) -> None:
    err = refusal(number(body))
    assert err.text.text("zh").startswith("证件号码中的地区代码不存在")
    assert ACCEPTED_ZH in err.text.text("zh")
    assert err.message.startswith("the region code in the ID number does not exist")
    assert ACCEPTED_EN in err.message


@pytest.mark.parametrize(
    "body",
    [
        "9" + "90" + "840" + "19850612" + "123",  # no province 90
        "9" + "81" + "840" + "19850612" + "123",  # Hong Kong issues no such card
        "9" + "71" + "840" + "19850612" + "123",
        "9" + "31" + "999" + "19850612" + "123",  # user-assigned, not a country
        "9" + "31" + "000" + "19850612" + "123",
        "9" + "31" + "156" + "19850612" + "123",  # China: a citizen, not a foreigner
        "9" + "31" + "158" + "19850612" + "123",  # Taiwan residents hold permits
    ],
)
def test_a_foreigner_card_needs_a_real_province_and_nationality(body: str) -> None:
    err = refusal(number(body))
    assert "受理地区或国籍代码不存在" in err.text.text("zh")
    assert "nationality code" in err.message


@pytest.mark.parametrize(
    "prefix",
    ["110105", "810000", "820000", "830000", "9" + "31" + "840"],
    ids=["resident", "hong-kong", "macao", "taiwan", "foreigner"],
)
def test_birth_date_and_check_character_are_checked_for_every_type(prefix: str) -> None:
    for birth in ("19900230", "19901301", "20261202", "20270101"):  # unreal, or after TODAY
        err = refusal(number(prefix + birth + "002"))
        assert err.message == "the birth date in the ID card number is not valid"
    assert validate_id_number(number(prefix + "20261201" + "002"), TODAY)  # born today
    err = refusal(wrong_check(prefix + "19900823" + "002"))
    assert err.message == "the check character of the ID card number is wrong"


async def test_the_ticket_api_accepts_every_type_and_refuses_with_the_types(
    client: Any,
) -> None:
    for value in VALID.values():
        body = {"queue": "dept:edu", "id_number": value, "phone": PHONE}
        r = await client.post("/api/v1/tickets", json=body)
        assert r.status == 201, (value, await r.text())
    bad = number("840000" + "19900823" + "002")
    for lang, accepted in (("zh", ACCEPTED_ZH), ("en", ACCEPTED_EN)):
        body = {"queue": "dept:edu", "id_number": bad, "phone": PHONE, "lang": lang}
        r = await client.post("/api/v1/tickets", json=body)
        assert r.status == 422
        err = await r.json()
        assert err["field"] == "id_number" and accepted in err["message"]


async def test_the_kiosk_says_which_cards_it_takes(client: Any) -> None:
    zh = await (await client.get("/kiosk")).text()
    assert "居民身份证、港澳台居民居住证、外国人永久居留身份证" in zh and "证件号码" in zh
    en = await (await client.get("/kiosk", params={"lang": "en"})).text()
    assert "HK/Macao/Taiwan permit" in en and "permanent ID" in en


@pytest.mark.parametrize("value", VALID.values(), ids=VALID.keys())
def test_event_bodies_never_carry_a_full_number_of_any_type(value: str) -> None:
    assert personal_data_in({"note": f"applicant {value} called"}) == "body.note"
    assert personal_data_in({"id_masked": identity.mask_id(value)}) is None
