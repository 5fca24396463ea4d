"""A labelled sample for the PII detector: columns with a name, a type, values and the truth.

True PII of every category (by name, by values, by both, with neutral names), and hard negatives that
look like PII to a careless detector: order ids, SKUs, amounts, ISO dates, zip-like codes, version
strings, hashes, EAN barcodes, tracking numbers, MAC addresses, product and company names, flags and
counts about PII. Values are synthetic (example.com, test IBANs and card numbers, reserved phone and
IP ranges) and built deterministically, so the figures are the same on every run.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any

from runner.observe.pii import luhn_ok

R = random.Random(9)
N = 60


@dataclass
class Column:
    name: str
    type: str
    values: list[Any]
    truth: str | None  # the PII category, or None
    model: str = "customers"


def _many(make, n: int = N) -> list[Any]:
    return [make(i) for i in range(n)]


def _luhn_complete(prefix: str, length: int) -> str:
    body = prefix + "".join(str(R.randrange(10)) for _ in range(length - len(prefix) - 1))
    return next(body + str(d) for d in range(10) if luhn_ok(body + str(d)))


def _iban(country: str, bban: str) -> str:
    digits = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    check = 98 - int(digits) % 97
    return f"{country}{check:02d}{bban}"


FIRST = ["Ada", "Bob", "Chloé", "Dmitri", "Eve", "Farah", "Gus", "Hana", "Ivo", "Jun"]
LAST = ["Lovelace", "Marley", "Durand", "Ivanov", "Adams", "Khan", "Grissom", "Sato", "Novak", "Li"]
emails = _many(lambda i: f"{FIRST[i % 10].lower()}.{LAST[i % 7].lower()}{i}@example.com")
phones = _many(lambda i: [f"+44 20 7946 {i:04d}", f"(415) 555-{i:04d}", f"06 12 34 {i % 100:02d} {i % 37:02d}",
                          f"+33 6 12 34 56 {i % 100:02d}", f"030 {1234000 + i:07d}"][i % 5])
ibans = _many(lambda i: _iban(["DE", "NL", "FR"][i % 3], [f"37040044053201300{i:02d}", f"ABNA04171643{i:02d}",
                                                           f"2004101005050001{i:02d}M0"][i % 3]))
cards = _many(lambda i: _luhn_complete(["4", "51", "37", "6011"][i % 4], [16, 16, 15, 16][i % 4]))
spaced_cards = [" ".join(c[j:j + 4] for j in range(0, len(c), 4)) for c in cards]
ipv4 = _many(lambda i: f"203.0.113.{i}" if i % 2 else f"198.51.100.{i}")
ipv6 = _many(lambda i: f"2001:db8::{i:x}")
ssns = _many(lambda i: f"{123 + i:03d}-{45 + i % 40:02d}-{6789 + i:04d}")
streets = _many(lambda i: [f"{i + 1} Baker Street", f"{i + 10} rue de Rivoli", f"Hauptstraße {i + 1}",
                           f"{i + 100} Elm Ave"][i % 4])
dates = _many(lambda i: f"19{50 + i % 50}-{1 + i % 12:02d}-{1 + i % 28:02d}")
full_names = _many(lambda i: f"{FIRST[i % 10]} {LAST[(i * 3) % 10]}")
ints = _many(lambda i: 1000 + i)

POSITIVES = [
    Column("email", "VARCHAR", emails, "email"),
    Column("customer_email", "VARCHAR", emails, "email"),
    Column("EmailAddress", "VARCHAR", emails, "email"),
    Column("contact", "VARCHAR", emails, "email"),  # by values alone
    Column("login", "VARCHAR", emails, "email"),
    Column("phone", "VARCHAR", phones, "phone"),
    Column("mobile_number", "VARCHAR", phones, "phone"),
    Column("tel", "VARCHAR", phones, "phone"),
    Column("reach_at", "VARCHAR", phones, "phone"),  # by values alone
    Column("phone_number", "BIGINT", [], "phone"),  # by name alone (numbers are not sampled)
    Column("first_name", "VARCHAR", [FIRST[i % 10] for i in range(N)], "name"),
    Column("last_name", "VARCHAR", [LAST[i % 10] for i in range(N)], "name"),
    Column("full_name", "VARCHAR", full_names, "name"),
    Column("surname", "VARCHAR", [LAST[i % 10] for i in range(N)], "name"),
    Column("name", "VARCHAR", full_names, "name"),  # a bare name in a model about people
    Column("contactName", "VARCHAR", full_names, "name"),
    Column("address", "VARCHAR", streets, "address"),
    Column("street", "VARCHAR", streets, "address"),
    Column("billing_address_line1", "VARCHAR", streets, "address"),
    Column("delivered_to", "VARCHAR", streets, "address"),  # by values alone
    Column("postcode", "VARCHAR", _many(lambda i: f"SW1A {i % 9}AA"), "address"),
    Column("iban", "VARCHAR", ibans, "iban"),
    Column("payout_account", "VARCHAR", ibans, "iban"),  # by values alone
    Column("bank_account_number", "VARCHAR", ibans, "iban"),
    Column("ssn", "VARCHAR", ssns, "ssn"),
    Column("national_id", "VARCHAR", _many(lambda i: f"AB{i:06d}C"), "ssn"),
    Column("passport_number", "VARCHAR", _many(lambda i: f"X{i:08d}"), "ssn"),
    Column("tax_ref", "VARCHAR", ssns, "ssn"),  # by values alone
    Column("birth_date", "DATE", dates, "birth"),
    Column("date_of_birth", "VARCHAR", dates, "birth"),
    Column("dob", "DATE", dates, "birth"),
    Column("birthday", "DATE", dates, "birth"),
    Column("credit_card_number", "VARCHAR", cards, "card"),
    Column("card_number", "VARCHAR", spaced_cards, "card"),
    Column("pay_ref", "VARCHAR", spaced_cards, "card"),  # by values alone
    Column("ip_address", "VARCHAR", ipv4, "ip"),
    Column("client_ip", "VARCHAR", ipv6, "ip"),
    Column("last_seen_from", "VARCHAR", ipv4, "ip"),  # by values alone
    Column("ipv6", "VARCHAR", ipv6, "ip"),
]

NEGATIVES = [
    Column("order_id", "INTEGER", ints, None, "orders"),
    Column("order_number", "VARCHAR", _many(lambda i: f"ORD-{i:06d}"), None, "orders"),
    Column("sku", "VARCHAR", _many(lambda i: f"SKU-{48213 + i}-BL"), None, "orders"),
    Column("amount", "DECIMAL(10,2)", _many(lambda i: f"{i * 3.5:.2f}"), None, "orders"),
    Column("amount_text", "VARCHAR", _many(lambda i: f"{1000 + i * 37.25:.2f}"), None, "orders"),
    Column("ordered_on", "VARCHAR", _many(lambda i: f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}"), None, "orders"),
    Column("created_at", "VARCHAR", _many(lambda i: f"2024-03-01T10:{i % 60:02d}:00Z"), None, "orders"),
    Column("region_code", "VARCHAR", _many(lambda i: f"{10115 + i}"), None, "orders"),
    Column("version", "VARCHAR", _many(lambda i: f"{i % 4}.{i % 13}.{i}"), None, "releases"),
    Column("checksum", "VARCHAR", _many(lambda i: hashlib.sha256(str(i).encode()).hexdigest()), None, "files"),
    Column("md5", "VARCHAR", _many(lambda i: hashlib.md5(str(i).encode()).hexdigest()), None, "files"),  # noqa: S324
    Column("product_name", "VARCHAR", _many(lambda i: f"Blue Widget {i}"), None, "products"),
    Column("name", "VARCHAR", _many(lambda i: f"Widget {i} Pack"), None, "products"),
    Column("company_name", "VARCHAR", _many(lambda i: f"Acme {i} GmbH"), None, "suppliers"),
    Column("file_name", "VARCHAR", _many(lambda i: f"report_{i}.csv"), None, "files"),
    Column("status", "VARCHAR", _many(lambda i: ["placed", "shipped", "returned"][i % 3]), None, "orders"),
    Column("currency", "VARCHAR", _many(lambda i: ["EUR", "USD", "GBP"][i % 3]), None, "orders"),
    Column("ean", "VARCHAR", _many(lambda i: f"400638133{3931 + i:04d}"), None, "products"),
    Column("tracking_number", "VARCHAR", _many(lambda i: f"1Z999AA1{i:010d}"), None, "orders"),
    Column("device_mac", "VARCHAR", _many(lambda i: f"00:1a:2b:3c:4d:{i:02x}"), None, "devices"),
    Column("mac_address", "VARCHAR", _many(lambda i: f"00:1a:2b:3c:4d:{i:02x}"), None, "devices"),
    Column("email_verified", "BOOLEAN", [], None),
    Column("has_phone", "BOOLEAN", [], None),
    Column("email_count", "INTEGER", [], None),
    Column("customer_id", "INTEGER", ints, None),
    Column("customer_uuid", "VARCHAR", _many(lambda i: f"5f0c6c3e-1b2a-4c7e-9d3f-{i:012d}"), None),
    Column("ip_country", "VARCHAR", _many(lambda i: ["DE", "FR", "NL"][i % 3]), None),
    Column("email_domain", "VARCHAR", _many(lambda i: ["example.com", "example.org"][i % 2]), None),
    Column("mobile_app_version", "VARCHAR", _many(lambda i: f"{i % 5}.{i % 11}.2"), None),
    Column("latitude", "DOUBLE", [], None),
    Column("score", "VARCHAR", _many(lambda i: f"{i / 7:.4f}"), None, "orders"),
    Column("quantity", "VARCHAR", _many(lambda i: str(i)), None, "orders"),
    Column("order_ref", "VARCHAR", _many(lambda i: f"{1234567890 + i * 7919}"), None, "orders"),
    Column("serial", "VARCHAR", _many(lambda i: f"{4000000000000000 + i * 7919}"), None, "devices"),
    Column("referrer", "VARCHAR", _many(lambda i: f"https://example.com/page/{i}?utm=mail"), None, "visits"),
    Column("time_slot", "VARCHAR", _many(lambda i: f"{i % 24:02d}:{i % 60:02d}:00"), None, "orders"),
    Column("category", "VARCHAR", _many(lambda i: ["garden", "kitchen", "tools"][i % 3]), None, "products"),
]

LABELLED = POSITIVES + NEGATIVES
