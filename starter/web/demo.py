"""The demo accounts /ui/login offers in dev mode (the customers and suppliers of the seed)."""

from dataclasses import dataclass

from starter.security import Role


@dataclass(frozen=True)
class DemoAccount:
    key: str
    sub: str
    role: Role
    label: str
    supplier_id: str | None = None


DEMO_ACCOUNTS: tuple[DemoAccount, ...] = (
    DemoAccount("alice", "alice", Role.CUSTOMER, "Alice (customer)"),
    DemoAccount("bob", "bob", Role.CUSTOMER, "Bob (customer)"),
    DemoAccount("tea-house", "tea-house", Role.SUPPLIER, "Tea House (supplier)", "tea-house"),
    DemoAccount(
        "ceramics-co", "ceramics-co", Role.SUPPLIER, "Ceramics Co (supplier)", "ceramics-co"
    ),
    DemoAccount(
        "digital-goods", "digital-goods", Role.SUPPLIER, "Digital Goods (supplier)", "digital-goods"
    ),
    DemoAccount("admin", "admin", Role.ADMIN, "Admin (operator)"),
)
