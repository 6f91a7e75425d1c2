"""Languages of the pages: Simplified Chinese and English, from gettext catalogs.

English is the source language (msgids); `locales/zh_CN/LC_MESSAGES/*.po` hold the
Chinese. The catalogs are read with Babel when the process starts: one file per page
area, merged, so there is no compile step and nothing binary in the repository.
"""

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from babel.messages.pofile import read_po
from starlette.requests import Request

LOCALES_DIR = Path(__file__).parent / "locales"
DEFAULT_LOCALE = "en"
LOCALES = ("en", "zh_CN")
# What the language switch shows for each locale (in its own language).
LOCALE_NAMES = {"en": "English", "zh_CN": "简体中文"}
LANG_COOKIE = "orders_lang"


@lru_cache
def catalog(locale: str) -> dict[str, str]:
    """msgid → translation for one locale (empty for English, the source language)."""
    messages: dict[str, str] = {}
    folder = LOCALES_DIR / locale / "LC_MESSAGES"
    for po in sorted(folder.glob("*.po")) if folder.is_dir() else []:
        with po.open("rb") as f:
            for message in read_po(f, locale=locale):
                if message.id and isinstance(message.id, str) and message.string:
                    messages[message.id] = str(message.string)
    return messages


def gettext_for(locale: str) -> Callable[[str], str]:
    table = catalog(locale) if locale in LOCALES else {}

    def gettext(message: str) -> str:
        return table.get(message, message)

    return gettext


def normalize(tag: str | None) -> str | None:
    """`zh-CN`, `zh_cn`, `zh-Hans`, `zh` → `zh_CN`; `en-GB` → `en`; others → None."""
    if not tag:
        return None
    tag = tag.strip().replace("_", "-").lower()
    if tag.startswith("zh"):
        return "zh_CN"
    if tag.startswith("en"):
        return "en"
    return None


def choose(request: Request) -> str:
    """The switch's remembered choice, else the browser's Accept-Language, else English."""
    chosen = normalize(request.cookies.get(LANG_COOKIE))
    if chosen:
        return chosen
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate(request.headers.get("accept-language", "").split(",")):
        tag, _, params = part.partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        locale = normalize(tag)
        if locale and q > 0:
            weighted.append((-q, position, locale))
    return min(weighted)[2] if weighted else DEFAULT_LOCALE


def html_lang(locale: str) -> str:
    return "zh-CN" if locale == "zh_CN" else "en"
