"""Announcement texts for the display board, read as a person at a center would.

Ticket digits are read one by one (A023 → "A零二三"), window numbers as a number
(12 → "十二").  The board speaks these with the browser's speech synthesis.
"""

from __future__ import annotations

DIGITS = "零一二三四五六七八九"


def zh_number(n: int) -> str:
    """Chinese reading of 0..9999 (12 → 十二, 20 → 二十, 105 → 一百零五)."""
    if n < 0 or n > 9999:
        return str(n)
    if n < 10:
        return DIGITS[n]
    if n < 20:
        return "十" + (DIGITS[n % 10] if n % 10 else "")
    units = [(1000, "千"), (100, "百"), (10, "十")]
    out = ""
    zero = False
    for size, name in units:
        d, n = divmod(n, size)
        if d:
            if zero:
                out += "零"
                zero = False
            out += DIGITS[d] + name
        elif out:
            zero = True
    if n:
        if zero:
            out += "零"
        out += DIGITS[n]
    return out


def zh_ticket(ticket_no: str) -> str:
    return "".join(DIGITS[int(c)] if c.isdigit() else c for c in ticket_no)


def announce_zh(ticket_no: str, window_number: int) -> str:
    return f"请{zh_ticket(ticket_no)}号到{zh_number(window_number)}号窗口办理"


def announce_en(ticket_no: str, window_number: int) -> str:
    spaced = " ".join(ticket_no)
    return f"Number {spaced}, please go to window {window_number}"
