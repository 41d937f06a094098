"""Checks and masking for personal data: resident ID numbers and mainland mobile numbers.

ID numbers follow GB 11643-1999 (region code, birth date, ISO 7064 check character) and are
validated with python-stdnum; mobiles with phonenumbers.  Full ID digits are sensitive
personal information: everything outside intake shows :func:`mask_id`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import phonenumbers
from stdnum import exceptions as stdnum_exc
from stdnum import numdb
from stdnum.cn import ric

from onestop.i18n import LazyText, lazy_gettext


class FieldError(ValueError):
    """A value that fails its check; ``text`` says why in any language (``message``: English)."""

    def __init__(self, text: LazyText) -> None:
        self.text = text
        self.message = text.text("en")
        super().__init__(self.message)


def validate_id_number(value: str, today: dt.date | None = None) -> str:
    """Return the normalised 18-character ID number or raise FieldError saying why."""
    raw = (value or "").strip().upper().replace(" ", "")
    if not raw:
        raise FieldError(lazy_gettext("请输入身份证号码"))
    if len(raw) != 18:
        raise FieldError(lazy_gettext("身份证号码应为18位"))
    if not raw[:17].isdigit() or not (raw[17].isdigit() or raw[17] == "X"):
        raise FieldError(lazy_gettext("身份证号码格式不正确（17位数字加一位数字或X）"))
    try:
        birth = ric.get_birth_date(raw)
    except stdnum_exc.ValidationError:
        raise FieldError(lazy_gettext("身份证号码中的出生日期无效")) from None
    if birth > (today or dt.date.today()):
        raise FieldError(lazy_gettext("身份证号码中的出生日期无效"))
    if not _region_exists(raw[:6]):
        raise FieldError(lazy_gettext("身份证号码中的地区代码不存在"))
    if ric.calc_check_digit(raw) != raw[17]:
        raise FieldError(lazy_gettext("身份证号码校验位错误，请核对后重新输入"))
    return raw


def _region_exists(code: str) -> bool:
    """Whether the 6-digit region code is in GB/T 2260, in any year.

    ``ric.validate`` also demands that the county existed in the birth year, which rejects
    real cards: numbers were assigned when cards were issued (from 1984), so a citizen born
    in 1940 carries a code created in 1983.  Only existence is checked here.
    """

    info = {k for _, props in numdb.get("cn/loc").info(code) for k in props}
    return "county" in info


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
