"""A small storefront product page that shows what the service decides: the product, "you might also
like" (recommendations re-ranked around the product) and the visitor's web offer or content, or the
default experience for a visitor the platform does not know. Rendered on the server with every value
HTML-escaped: catalog names and offer codes come from landing data and are never trusted as markup.
"""

from __future__ import annotations

from html import escape

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:60rem;color:#222}
.product{border-bottom:1px solid #ddd;padding-bottom:1rem}
.offer{background:#fff6d6;border:1px solid #e6c200;padding:.75rem;margin:1rem 0}
.default{background:#eef3f8;border:1px solid #9db4cc;padding:.75rem;margin:1rem 0}
ul.recs{list-style:none;padding:0;display:grid;grid-template-columns:repeat(auto-fill,minmax(12rem,1fr));gap:.5rem}
ul.recs li{border:1px solid #ddd;padding:.5rem}
"""


def _price(item: dict) -> str:
    return "" if item.get("price") is None else f"{item['price']:.2f}"


def _item(item: dict) -> str:
    return (
        f'<li data-item-id="{escape(item["item_id"])}"><strong>{escape(item.get("name") or item["item_id"])}</strong>'
        f"<br>{escape(item.get('category') or '')} {escape(_price(item))}</li>"
    )


def _offer(decision: dict) -> str:
    if decision["default_experience"]:
        return (
            f'<section class="default" id="experience" data-default="true">Welcome! Browse our most popular '
            f"products. <small>({escape(decision['reason'])})</small></section>"
        )
    parts = [f"Offer: <code>{escape(decision['offer_code'])}</code>" if decision["offer_code"] else ""]
    parts.append(f"Content: <code>{escape(decision['content_id'])}</code>" if decision["content_id"] else "")
    return (
        f'<section class="offer" id="experience" data-default="false" data-audience="{escape(decision["audience"])}">'
        f"{' '.join(part for part in parts if part) or 'Picked for you'} "
        f"<small>({escape(decision['audience'])}, {escape(decision['experiment_group'])})</small></section>"
    )


def product_page(product: dict, decision: dict, recommendations: dict) -> str:
    """The HTML of the product page for one visitor."""
    items = "".join(_item(item) for item in recommendations["items"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(product.get("name") or product["item_id"])}</title>
<style>{STYLE}</style></head>
<body>
<section class="product" id="product" data-item-id="{escape(product["item_id"])}">
<h1>{escape(product.get("name") or product["item_id"])}</h1>
<p>{escape(product.get("category") or "")} <span class="price">{escape(_price(product))}</span></p>
</section>
{_offer(decision)}
<h2>You might also like</h2>
<ul class="recs" id="recommendations" data-strategy="{escape(recommendations["strategy"])}">{items}</ul>
<footer><small>decision {escape(decision["decision_id"])} · ds {escape(str(decision["ds"]))}</small></footer>
</body></html>"""
