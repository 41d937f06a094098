"""Checks and masking for personal data: national ID numbers and mainland mobile numbers.

Accepted ID numbers, all 18 characters with a birth date at positions 7-14 and an
ISO 7064 MOD 11-2 check character (GB 11643-1999):

- the resident ID card (居民身份证): a GB/T 2260 region code, birth date, sequence;
- the residence permits for Hong Kong, Macao and Taiwan residents (港澳台居民居住证),
  whose region code is 810000, 820000 or 830000;
- the foreigner's permanent residence ID card of 2023 (外国人永久居留身份证): ``9``, the
  2-digit province code of the issuing authority, the 3-digit ISO 3166-1 numeric code of
  the nationality, birth date, sequence.

Region codes come from python-stdnum, country codes from Babel's CLDR data, mobiles are
checked with phonenumbers.  Full ID digits are sensitive personal information: everything
outside intake shows :func:`mask_id`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from functools import cache
from typing import Any

import phonenumbers
from babel import Locale
from babel.core import get_global
from stdnum import exceptions as stdnum_exc
from stdnum import numdb
from stdnum.cn import ric

from onestop.i18n import LazyText, lazy_gettext

RESIDENT = "resident"
PERMIT = "permit"
FOREIGNER = "foreigner"

# Region codes of the residence permits for Hong Kong, Macao and Taiwan residents.
PERMIT_REGIONS = {"810000": "HK", "820000": "MO", "830000": "TW"}
# Nationalities a foreigner's card cannot carry (citizens and the permit regions).
_NOT_FOREIGN = {"CN", "HK", "MO", "TW"}


class FieldError(ValueError):
    """A value that fails its check; ``text`` says why in any language (``message``: English)."""

    def __init__(self, text: LazyText) -> None:
        self.text = text
        self.message = text.text("en")
        super().__init__(self.message)


def id_type(id_number: str) -> str:
    """Which card an 18-character number belongs to: RESIDENT, PERMIT or FOREIGNER."""
    if id_number[:1] == "9":
        return FOREIGNER
    return PERMIT if id_number[:6] in PERMIT_REGIONS else RESIDENT


def validate_id_number(value: str, today: dt.date | None = None) -> str:
    """Return the normalised 18-character ID number or raise FieldError saying why."""
    raw = (value or "").strip().upper().replace(" ", "")
    if not raw:
        raise FieldError(lazy_gettext("请输入身份证号码"))
    if len(raw) != 18:
        raise FieldError(
            lazy_gettext(
                "证件号码应为18位，可使用居民身份证、港澳台居民居住证或外国人永久居留身份证"
            )
        )
    if not raw[:17].isdigit() or not (raw[17].isdigit() or raw[17] == "X"):
        raise FieldError(lazy_gettext("身份证号码格式不正确（17位数字加一位数字或X）"))
    try:
        birth = ric.get_birth_date(raw)
    except stdnum_exc.ValidationError:
        raise FieldError(lazy_gettext("身份证号码中的出生日期无效")) from None
    if birth > (today or dt.date.today()):
        raise FieldError(lazy_gettext("身份证号码中的出生日期无效"))
    if id_type(raw) == FOREIGNER:
        if not _issuing_province(raw[1:3]) or not _nationality(raw[3:6]):
            raise FieldError(lazy_gettext("外国人永久居留身份证号码中的受理地区或国籍代码不存在"))
    elif id_type(raw) == RESIDENT and not _region_exists(raw[:6]):
        raise FieldError(
            lazy_gettext(
                "证件号码中的地区代码不存在，"
                "可使用居民身份证、港澳台居民居住证或外国人永久居留身份证"
            )
        )
    if ric.calc_check_digit(raw) != raw[17]:
        raise FieldError(lazy_gettext("身份证号码校验位错误，请核对后重新输入"))
    return raw


def is_id_number(value: str) -> bool:
    """Whether ``value`` is an accepted ID number of any type, whatever its birth date."""
    try:
        validate_id_number(value, dt.date.max)
    except FieldError:
        return False
    return True


def _region_exists(code: str) -> bool:
    """Whether the 6-digit region code is in GB/T 2260, in any year.

    ``ric.validate`` also demands that the county existed in the birth year, which rejects
    real cards: numbers were assigned when cards were issued (from 1984), so a citizen born
    in 1940 carries a code created in 1983.  Only existence is checked here.
    """

    info = {k for _, props in numdb.get("cn/loc").info(code) for k in props}
    return "county" in info


def _issuing_province(code: str) -> bool:
    """Whether ``code`` is a mainland province-level code (11-65) in GB/T 2260."""
    if not "11" <= code <= "65":
        return False
    return any("province" in props for _, props in numdb.get("cn/loc").info(code + "0000"))


@cache
def _countries() -> frozenset[str]:
    """ISO 3166-1 numeric codes of countries a foreigner's card may name: CLDR's aliases of
    one named territory, below the user-assigned range 900-999."""
    aliases: Mapping[str, list[str]] = get_global("territory_aliases")
    named = Locale("en").territories
    return frozenset(
        code
        for code, targets in aliases.items()
        if code.isdigit()
        and code < "900"
        and len(targets) == 1
        and targets[0] in named
        and targets[0] not in _NOT_FOREIGN
    )


def _nationality(code: str) -> bool:
    return code in _countries()


def birth_date(id_number: str) -> dt.date:
    return ric.get_birth_date(id_number)  # type: ignore[no-any-return]


def age_on(id_number: str, day: dt.date) -> int:
    b = birth_date(id_number)
    return day.year - b.year - ((day.month, day.day) < (b.month, b.day))


def mask_id(id_number: str) -> str:
    """``370102********1234``: region kept, birth date and sequence hidden."""
    if not id_number:
        return ""
    return id_number[:6] + "*" * (len(id_number) - 10) + id_number[-4:]


def validate_phone(value: str) -> str:
    """Return the 11-digit national number of a mainland China mobile or raise FieldError."""
    raw = (value or "").strip().replace(" ", "").replace("-", "")
    if not raw:
        raise FieldError(lazy_gettext("请输入手机号码"))
    try:
        num = phonenumbers.parse(raw, "CN")
    except phonenumbers.NumberParseException:
        raise FieldError(lazy_gettext("手机号码格式不正确")) from None
    if num.country_code != 86 or not phonenumbers.is_valid_number(num):
        raise FieldError(lazy_gettext("不是有效的中国大陆手机号码"))
    if phonenumbers.number_type(num) not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        raise FieldError(lazy_gettext("请填写手机号码，而非固定电话"))
    return str(num.national_number)


def mask_phone(phone: str) -> str:
    """``138****5678``."""
    if len(phone) < 7:
        return "*" * len(phone)
    return phone[:3] + "****" + phone[-4:]


def person_fields(
    data: dict[str, Any], today: dt.date, errors: dict[str, str], default_lang: str = "zh"
) -> tuple[str, str, str]:
    """Check a citizen's ``id_number`` and ``phone`` (and ``lang``) from a request body.

    Returns ``(id_number, phone, lang)``; each bad field adds its message, in the request's
    language, to ``errors`` and comes back empty.
    """
    lang = data.get("lang") or default_lang
    if lang not in ("zh", "en"):
        errors["lang"] = "lang must be zh or en"
        lang = "en"
    try:
        id_number = validate_id_number(str(data.get("id_number") or ""), today)
    except FieldError as exc:
        errors["id_number"] = exc.text.text(lang)
        id_number = ""
    try:
        phone = validate_phone(str(data.get("phone") or ""))
    except FieldError as exc:
        errors["phone"] = exc.text.text(lang)
        phone = ""
    return id_number, phone, str(lang)
