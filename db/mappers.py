"""Read-model rows as domain contracts (shared by activities and the API's reads)."""

from db.tables import Customer, Product
from domain.models import Address, CatalogProduct, CustomerAccount
from domain.states import ProductKind


def catalog_product(row: Product) -> CatalogProduct:
    return CatalogProduct(
        sku=row.sku,
        name=row.name,
        supplier_id=row.supplier_id,
        product_type=row.product_type,
        kind=ProductKind(row.kind),
        price=row.price,
        on_hand=row.on_hand,
        reserved=row.reserved,
        active=row.active,
    )


def customer_account(row: Customer) -> CustomerAccount:
    address = Address.model_validate(row.default_address) if row.default_address else None
    return CustomerAccount(id=row.id, coins=row.coins, default_address=address)
