"""Route badge colours that stay readable: the feed's text colour when it contrasts enough, else black or white
(on a darker shade of the route colour when neither reaches WCAG AA, as on a mid-tone orange).

Feeds often leave ``route_text_color`` empty (GTFS then means black) or pair a light route colour with white;
WCAG 2 contrast is computed so a badge's number is always legible on a phone in the sun.
"""

from __future__ import annotations

import re

__all__ = ["DEFAULT_ROUTE_COLOR", "MIN_BADGE_CONTRAST", "badge_style", "contrast_ratio"]

DEFAULT_ROUTE_COLOR = "00838F"
DARK, LIGHT = "17202C", "FFFFFF"
# WCAG AA for body text: a bold route number counts as large text only from 18.66 px, and badges are smaller
MIN_BADGE_CONTRAST = 4.5
DARKEN = 0.9  # a route colour no text reaches AA on is darkened by this step until white does
_HEX = re.compile(r"[0-9A-Fa-f]{6}")


def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4


def _luminance(hex_color: str) -> float:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (0, 2, 4))
    return 0.2126 * _channel(r) + 0.7152 * _channel(g) + 0.0722 * _channel(b)


def contrast_ratio(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two ``RRGGBB`` colours (1 to 21)."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def badge_style(color: str | None, text_color: str | None = None) -> str:
    """Inline CSS for a route badge: the route's colour, with text that contrasts with it."""
    background = color.upper() if color and _HEX.fullmatch(color) else DEFAULT_ROUTE_COLOR
    text = text_color.upper() if text_color and _HEX.fullmatch(text_color) else None
    if text is None or contrast_ratio(background, text) < MIN_BADGE_CONTRAST:
        text = max((LIGHT, DARK), key=lambda c: contrast_ratio(background, c))
    while contrast_ratio(background, text) < MIN_BADGE_CONTRAST:  # mid-tone orange or red: neither text is legible
        background, text = _darker(background), LIGHT
    return f"background:#{background};color:#{text}"


def _darker(hex_color: str) -> str:
    return "".join(f"{int(int(hex_color[i:i + 2], 16) * DARKEN):02X}" for i in (0, 2, 4))
