"""Languages: every string the pages show has its Chinese, and the choice is the user's."""

import io
from pathlib import Path

import pytest
from jinja2.ext import babel_extract
from starlette.requests import Request

from starter.web import i18n, words
from starter.web.demo import DEMO_ACCOUNTS
from starter.web.render import TEMPLATES


def _template_msgids() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted(Path(TEMPLATES).rglob("*.html")):
        with path.open("rb") as f:
            for _, _, message, _ in babel_extract(
                io.BytesIO(f.read()), ["_", "gettext", "ngettext"], [], {}
            ):
                for msgid in message if isinstance(message, tuple) else (message,):
                    if isinstance(msgid, str):
                        found.setdefault(msgid, set()).add(path.name)
    return found


def test_every_template_string_has_chinese() -> None:
    zh = i18n.catalog("zh_CN")
    found = _template_msgids()
    assert found, "no translatable strings found in the templates"
    missing = {m: sorted(where) for m, where in found.items() if m not in zh}
    assert not missing, f"strings without a zh_CN translation: {missing}"


@pytest.mark.parametrize(
    "table",
    [
        words.STATUS_WORDS,
        words.CLOSE_REASON_WORDS,
        words.AFTER_SALE_TYPE_WORDS,
        words.KIND_WORDS,
        words.ORDER_TYPE_WORDS,
        words.PAYMENT_OUTCOME_WORDS,
        words.REFUND_STATUS_WORDS,
        {a.key: a.label for a in DEMO_ACCOUNTS},
    ],
)
def test_every_word_table_has_chinese(table: dict[str, str]) -> None:
    zh = i18n.catalog("zh_CN")
    assert not [w for w in table.values() if w not in zh]


def test_every_status_of_the_domain_has_words() -> None:
    from domain.states import AfterSaleStatus, ItemStatus, OrderStatus, SupplierOrderStatus

    for enum in (OrderStatus, SupplierOrderStatus, ItemStatus, AfterSaleStatus):
        assert not [s.value for s in enum if s.value not in words.STATUS_WORDS], enum


def test_client_statuses_read_as_the_apps_say_them() -> None:
    zh = i18n.gettext_for("zh_CN")
    shown = [zh(words.STATUS_WORDS[s]) for s in words.CLIENT_TABS]
    assert shown == ["待付款", "待发货", "待收货", "待评价", "已完成", "已关闭"]


def _request(headers: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "GET", "path": "/ui/shop", "headers": raw})


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, "en"),
        ({"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}, "zh_CN"),
        ({"Accept-Language": "en-GB,en;q=0.9,zh-CN;q=0.8"}, "en"),
        ({"Accept-Language": "fr-FR,zh-TW;q=0.5"}, "zh_CN"),
        ({"Accept-Language": "fr-FR,de;q=0.5"}, "en"),
        ({"Accept-Language": "en;q=0.1,zh;q=0.9"}, "zh_CN"),
        ({"Accept-Language": "zh;q=0,en;q=0.2"}, "en"),
        ({"Accept-Language": "zh-CN", "Cookie": "orders_lang=en"}, "en"),
        ({"Accept-Language": "en", "Cookie": "orders_lang=zh_CN"}, "zh_CN"),
        ({"Accept-Language": "zh-CN", "Cookie": "orders_lang=klingon"}, "zh_CN"),
    ],
)
def test_language_from_the_switch_then_the_browser(headers: dict[str, str], expected: str) -> None:
    assert i18n.choose(_request(headers)) == expected


def test_time_spans_use_their_largest_unit() -> None:
    from datetime import timedelta

    assert words.span(timedelta(days=9, hours=23)) == (9, "days")
    assert words.span(timedelta(hours=1, minutes=5)) == (1, "hour")
    assert words.span(timedelta(seconds=-130)) == (2, "minutes")
    assert words.span(timedelta(seconds=1)) == (1, "second")


def test_live_notices_have_chinese() -> None:
    from starter.web import live

    zh = i18n.catalog("zh_CN")
    notices = {**live.PACKAGE_NOTICES, **live.SUPPLIER_NOTICES}.values()
    assert not [n for n in notices if n not in zh]
    assert all("{no}" in zh[n] for n in notices)


def test_catalogs_agree_where_they_share_a_string() -> None:
    from babel.messages.pofile import read_po

    seen: dict[str, tuple[str, str]] = {}
    clashes = []
    for po in sorted((i18n.LOCALES_DIR / "zh_CN" / "LC_MESSAGES").glob("*.po")):
        with po.open("rb") as f:
            for m in read_po(f):
                if not m.id or not isinstance(m.id, str):
                    continue
                text = str(m.string)
                if m.id in seen and seen[m.id][1] != text:
                    clashes.append((m.id, seen[m.id], (po.name, text)))
                seen.setdefault(m.id, (po.name, text))
    assert not clashes, clashes


def test_every_order_type_and_payment_outcome_has_words() -> None:
    from typing import get_args

    from domain.states import OrderType
    from starter.api.schemas import PaymentOutcome

    assert {t.value for t in OrderType} == set(words.ORDER_TYPE_WORDS)
    assert set(get_args(PaymentOutcome)) == set(words.PAYMENT_OUTCOME_WORDS)
