"""Personal data in columns: finding it, a legal decision on it, and masking it.

- Detection (plain functions, no database): `detect_column(name, values, sql_type=, model=)` reads a
  column's name (email, phone, first_name, iban, ssn, birth_date, ...) and, for text columns, a sample
  of its values (e-mail addresses, phone numbers, IBANs with their mod-97 check, card numbers with the
  Luhn check, IP addresses, US social security numbers, street addresses). It answers a `Finding`:
  one category, a confidence in 0..1 and the evidence, which holds counts and pattern names only —
  never a value, so the review page and the API show nothing sensitive.
- Scanning (`scan_model`): samples a production relation read-only through the warehouse's preview
  path and keeps the findings as `PiiTag` rows. A rescan never overrides people: a confirmed tag keeps
  its category and status (only its evidence is refreshed); a rejected one stays rejected unless the
  values now point to another category, which reopens it for review.
- Decisions (`decide_tag`): the legal role (`pii.classify`) confirms or rejects a tag with a note.
- Masking (`mask_result`, `mask_columns`): the one gate every read of a model's values passes through
  (previews, the catalog's sample, explore, chart data): confirmed-PII columns come back masked for
  people without `pii.view`; for people with it, the unmasked read is written to the audit log.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from models_service import access, audit
from models_service.errors import InvalidInput, InvalidState, NotFound

MASK = "•••"
MIN_CONFIDENCE = 0.5  # below it a finding is not worth a reviewer's time
SAMPLE_SIZE = 200  # non-null values read per text column
SCAN_ACTION = "pii.scan"

# --------------------------------------------------------------------------- masking


def confirmed_columns(model: str) -> set[str]:
    return confirmed_by_model([model]).get(model, set())


def confirmed_by_model(models: Iterable[str]) -> dict[str, set[str]]:
    """{model: {lower-cased confirmed column}} for several models in one query (previews read parents)."""
    from runner.models import PiiStatus, PiiTag

    found: dict[str, set[str]] = {}
    rows = PiiTag.objects.filter(model__in=list(models), status=PiiStatus.CONFIRMED).values_list("model", "column")
    for model, column in rows:
        found.setdefault(model, set()).add(column.lower())
    return found


def mask_result(user: Any, model: str | None, result: Any, *, where: str, source: str = "page") -> Any:
    """`result` is a runner.warehouse.QueryResult (columns: [{"name", "type"}], rows: lists); masked in
    place and returned. `where` names the reader for the audit log (preview, catalog, explore, chart)."""
    if not model:
        return result
    pii = confirmed_columns(model)
    hit = [i for i, col in enumerate(result.columns) if str(col.get("name", "")).lower() in pii]
    return mask_columns(user, model, result, hit, where=where, source=source)


def mask_columns(user: Any, model: str, result: Any, hit: Sequence[int], *, where: str, source: str = "page",
                 traced: Sequence[str] = ()) -> Any:
    """Mask the columns at positions `hit` unless `user` may see PII; a permitted unmasked read is
    audited. `traced` names the upstream `model.column`s the hits come from (previews), for the log."""
    if not hit:
        return result
    if access.can(user, "pii.view"):
        details: dict[str, Any] = {"where": where, "columns": [result.columns[i]["name"] for i in hit]}
        if traced:
            details["from"] = sorted(set(traced))
        audit.record(user, "pii.view", None, source=source, object_type="model", object_id=model,
                     object_repr=model, details=details)
        return result
    for row in result.rows:
        for i in hit:
            if row[i] is not None:
                row[i] = MASK
    for i in hit:
        result.columns[i] = {**result.columns[i], "masked": True}
    return result


# --------------------------------------------------------------------------- detection by name


def tokens(name: str) -> list[str]:
    """`billingAddressLine1` -> ["billing", "address", "line", "1"]: rules match words, not substrings
    (so "pan" never matches "company", nor "ip" "zip")."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    spaced = re.sub(r"([A-Za-z])([0-9])|([0-9])([A-Za-z])", r"\1\3_\2\4", spaced)
    return [t for t in re.split(r"[^a-z0-9]+", spaced.lower()) if t]


# category -> [(phrase, confidence)]; a phrase matches consecutive tokens or the same words written as
# one token ("first name" matches first_name and firstname).
NAME_RULES: dict[str, list[tuple[str, float]]] = {
    "email": [("email", 0.9), ("e mail", 0.9), ("email address", 0.92), ("mail address", 0.85), ("mail", 0.65)],
    "phone": [("phone", 0.9), ("telephone", 0.9), ("phone number", 0.92), ("cellphone", 0.9), ("msisdn", 0.9),
              ("mobile number", 0.9), ("mobile", 0.65), ("tel", 0.75), ("fax", 0.7)],
    "name": [(f"{q} name", 0.85) for q in ("first", "last", "full", "given", "family", "middle", "maiden", "nick",
                                           "customer", "client", "contact", "person", "employee", "patient",
                                           "member", "holder", "cardholder", "recipient", "sender", "legal")]
            + [("surname", 0.85), ("forename", 0.85), ("user name", 0.65)],
    "address": [("address", 0.8), ("street", 0.85), ("addr", 0.7), ("address line", 0.85),
                ("home address", 0.9), ("billing address", 0.85), ("shipping address", 0.85),
                ("house number", 0.8), ("postcode", 0.65), ("postal code", 0.65), ("zip", 0.6), ("zip code", 0.65)],
    "iban": [("iban", 0.95), ("bank account", 0.75), ("bank account number", 0.8)],
    "ssn": [("ssn", 0.95), ("social security", 0.95), ("national id", 0.9), ("national insurance", 0.9),
            ("nino", 0.85), ("passport", 0.85), ("passport number", 0.9), ("tax id", 0.8), ("bsn", 0.85),
            ("driver license", 0.85), ("driving licence", 0.85)],
    "birth": [("birth", 0.9), ("birthday", 0.9), ("birth date", 0.92), ("date of birth", 0.95), ("dob", 0.9),
              ("born", 0.7), ("birth place", 0.8)],
    "card": [("credit card", 0.9), ("card number", 0.88), ("cc number", 0.88), ("ccnum", 0.85), ("pan", 0.6),
             ("cvv", 0.9), ("cvc", 0.9)],
    "ip": [("ip", 0.85), ("ip address", 0.92), ("ipv4", 0.9), ("ipv6", 0.9), ("ip addr", 0.9),
           ("remote addr", 0.8)],
}
# A bare "name" is a person's in a model about people, a product's or a file's elsewhere.
PEOPLE_MODELS = frozenset("customer customers user users person people employee employees contact contacts member "
                          "members patient patients client clients subscriber subscribers lead leads staff student "
                          "students guest guests passenger passengers driver drivers author authors account "
                          "accounts".split())
NOT_PERSON = frozenset("product company file table column schema model category store shop brand city country state "
                       "region domain host event campaign item sku plan team org organisation organization project "
                       "vendor supplier merchant bank app device browser job street display service queue metric "
                       "feature field tag group role".split())
# Words that make a column about PII rather than PII itself: counts, flags, kinds, hashes.
DERIVED = frozenset("id ids uuid key count cnt total is has verified valid validated opt optin optout type kind "
                    "status flag domain provider format length len hash hashed md5 sha sha1 sha256 template "
                    "country bounced consent confirmed subscribed".split())
NOT_PII_PHRASES = ("mac address", "wallet address", "contract address", "web address")
NUMERIC = ("int", "decimal", "numeric", "double", "float", "real", "number")
TEMPORAL = ("date", "time", "interval")
TEXT_ONLY = frozenset({"email", "name", "address", "ip", "iban"})


def _has_phrase(toks: list[str], phrase: str) -> bool:
    words = phrase.split()
    if "".join(words) in toks:
        return True
    n = len(words)
    return any(toks[i:i + n] == words for i in range(len(toks) - n + 1))


def _type_allows(category: str, sql_type: str) -> bool:
    t = sql_type.lower()
    if not t:
        return True
    if "bool" in t:
        return False
    if category in TEXT_ONLY and any(k in t for k in NUMERIC + TEMPORAL):
        return False
    return not (category == "birth" and "int" not in t and any(k in t for k in NUMERIC))


def detect_by_name(column: str, *, sql_type: str = "", model: str = "") -> tuple[str, float, str] | None:
    """(category, confidence, the phrase that matched) for a column's name, or None."""
    toks = tokens(column)
    if not toks or any(_has_phrase(toks, p) for p in NOT_PII_PHRASES):
        return None
    if len(toks) > 1 and toks[0] in ("num", "n", "nb", "no"):
        return None
    best: tuple[str, float, str] | None = None
    for category, rules in NAME_RULES.items():
        for phrase, confidence in rules:
            if (best is None or confidence > best[1]) and _has_phrase(toks, phrase):
                best = (category, confidence, phrase)
    if best is None and toks[-1] == "name" and not (len(toks) > 1 and toks[-2] in NOT_PERSON):
        about_people = len(toks) == 1 and bool(PEOPLE_MODELS & set(tokens(model)))
        best = ("name", 0.75 if about_people else 0.45, "name")
    if best is None or not _type_allows(best[0], sql_type):
        return None
    covered = set(best[2].split()) | {best[2].replace(" ", "")}
    if any(t in DERIVED and t not in covered for t in toks):
        return None  # email_verified, phone_count, ip_country: about PII, not PII
    return best


# --------------------------------------------------------------------------- detection by value

EMAIL_RE = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}")
PHONE_CHARS_RE = re.compile(r"\+?[\d\s().\-/]{7,25}")
NANP_RE = re.compile(r"(?:\+?1[\s.-]?)?(?:\(([2-9]\d{2})\)\s?|([2-9]\d{2})[\s.-])\d{3}[\s.-]\d{4}")
TRUNK_RE = re.compile(r"0[1-9][\d\s().\-/]*")
SSN_RE = re.compile(r"(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}")
IBAN_RE = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}")
CARD_RE = re.compile(r"\d(?:[ -]?\d){11,18}")
_ADDRESS = (
    r"\d{1,5}[a-z]?,?\s+(?:[\w'.-]+\s+){0,4}(?:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|way|"
    r"court|ct|place|pl|terrace|close|crescent|square|sq|highway|hwy|parkway|pkwy)\b\.?(?:\s*,.*)?",
    r"\d{1,4}(?:\s*(?:bis|ter))?,?\s+(?:rue|avenue|boulevard|chemin|place|impasse|allée|calle|via|viale|avenida|"
    r"rua|piazza)\s+.+",
    r"[\w'.-]*(?:straße|strasse|str\.|weg|gasse|platz|allee|damm|laan|straat|gracht|plein|vej|gatan)\s+\d{1,4}[a-z]?"
    r"\b.*",
)
ADDRESS_RES = tuple(re.compile(p, re.IGNORECASE) for p in _ADDRESS)
# How far a value match alone is to be trusted: checksums make IBANs and cards near certain.
VALUE_STRENGTH = {"email": 0.97, "iban": 0.97, "card": 0.95, "ip": 0.9, "ssn": 0.85, "phone": 0.8, "address": 0.75}
# Where the values must show the name's pattern: SSNs (US-only pattern) and addresses (postcodes, cities)
# have honest values that no pattern here knows.
CHECKABLE = frozenset({"email", "phone", "iban", "card", "ip"})


def iban_ok(text: str) -> bool:
    """ISO 13616: move the first four characters to the end, letters to numbers, mod 97 is 1."""
    value = text.replace(" ", "").upper()
    if not IBAN_RE.fullmatch(value):
        return False
    digits = "".join(str(int(ch, 36)) for ch in value[4:] + value[:4])
    return int(digits) % 97 == 1


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _card_brand_ok(d: str) -> bool:
    """Issuer prefixes and their lengths (Visa, Mastercard, Amex, Discover, JCB, Diners): a Luhn pass on
    an arbitrary number (EAN barcodes, ids) is one in ten, the prefix and length rule the rest out."""
    n, p2, p4 = len(d), int(d[:2]), int(d[:4])
    return ((d[0] == "4" and n in (16, 19)) or ((51 <= p2 <= 55 or 2221 <= p4 <= 2720) and n == 16)
            or (p2 in (34, 37) and n == 15) or ((d.startswith("6011") or p2 == 65 or 644 <= int(d[:3]) <= 649)
                                                and 16 <= n <= 19)
            or (3528 <= p4 <= 3589 and 16 <= n <= 19) or ((p2 in (36, 38) or 300 <= int(d[:3]) <= 305) and n == 14))


def card_ok(text: str) -> bool:
    if not CARD_RE.fullmatch(text):
        return False
    digits = re.sub(r"\D", "", text)
    return 13 <= len(digits) <= 19 and _card_brand_ok(digits) and luhn_ok(digits)


def phone_ok(text: str) -> bool:
    """E.164 (+ and 8-15 digits), 00-prefixed international numbers, NANP (415-555-0132, (415) 555 0132)
    and national numbers with a trunk 0 (020 7946 0958, 06 12 34 56 78). Plain integers, ids and dates
    are not phones: they lack the +, the separators or the trunk 0, or have too few digits."""
    if not PHONE_CHARS_RE.fullmatch(text):
        return False
    digits = re.sub(r"\D", "", text)
    if text.startswith("+"):
        return 8 <= len(digits) <= 15 and digits[0] != "0"
    if digits.startswith("00"):
        return 10 <= len(digits) <= 15 and digits[2] != "0" and bool(re.search(r"[\s.\-/]", text))
    if NANP_RE.fullmatch(text):
        return True
    return bool(TRUNK_RE.fullmatch(text)) and 9 <= len(digits) <= 11


def ip_ok(text: str) -> bool:
    if not ("." in text or ":" in text) or len(text) > 45:
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def match_value(value: Any) -> str | None:
    """The PII category one value looks like, or None (the checks run from most to least specific)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not 5 <= len(text) <= 120:
        return None
    if "@" in text:
        return "email" if EMAIL_RE.fullmatch(text) else None
    if text[:2].isalpha() and iban_ok(text):
        return "iban"
    if card_ok(text):
        return "card"
    if SSN_RE.fullmatch(text):
        return "ssn"
    if ip_ok(text):
        return "ip"
    if phone_ok(text):
        return "phone"
    if any(r.fullmatch(text) for r in ADDRESS_RES):
        return "address"
    return None


# --------------------------------------------------------------------------- one column


@dataclass
class Finding:
    column: str
    category: str
    confidence: float
    evidence: dict[str, Any] = field(default_factory=dict)


def is_text(sql_type: str) -> bool:
    t = sql_type.lower()
    return not t or any(k in t for k in ("char", "text", "string", "clob"))


def _value_confidence(category: str, matched: int, sampled: int) -> float:
    """80% of the sample matching is full strength (real data is dirty); a small sample counts less."""
    if not sampled or not matched:
        return 0.0
    fraction = matched / sampled
    if fraction < 0.3:
        return 0.0
    return VALUE_STRENGTH[category] * min(1.0, fraction / 0.8) * min(1.0, (sampled / 10) ** 0.5)


def detect_column(column: str, values: Iterable[Any] = (), *, sql_type: str = "", model: str = "") -> Finding | None:
    """The column's most likely PII category, when its confidence reaches MIN_CONFIDENCE.

    Name and values are independent witnesses: agreeing, their confidences combine (1-(1-a)(1-b)); a
    name whose own pattern is absent from a good sample of values (a column `mobile` of app versions)
    counts for less."""
    by_name = detect_by_name(column, sql_type=sql_type, model=model)
    sample = [v for v in values if v is not None][:SAMPLE_SIZE] if is_text(sql_type) else []
    counts: dict[str, int] = {}
    for value in sample:
        category = match_value(value)
        if category:
            counts[category] = counts.get(category, 0) + 1
    scores = {c: _value_confidence(c, n, len(sample)) for c, n in counts.items()}
    name_conf = by_name[1] if by_name else 0.0
    mismatch = bool(by_name and by_name[0] in CHECKABLE and len(sample) >= 20
                    and counts.get(by_name[0], 0) < 0.1 * len(sample))
    if mismatch:
        name_conf *= 0.6
    candidates = dict(scores)
    if by_name:
        v = scores.get(by_name[0], 0.0)
        candidates[by_name[0]] = 1 - (1 - name_conf) * (1 - v)
    if not candidates:
        return None
    category, confidence = max(candidates.items(), key=lambda kv: kv[1])
    if confidence < MIN_CONFIDENCE:
        return None
    evidence: dict[str, Any] = {"values": {"sampled": len(sample), "matched": counts}}
    if by_name:
        evidence["name"] = {"category": by_name[0], "rule": by_name[2], "confidence": round(by_name[1], 2)}
    if mismatch:
        evidence["values"]["unlike_name"] = True
    return Finding(column, category, round(min(confidence, 0.99), 3), evidence)


# --------------------------------------------------------------------------- scanning a relation


def signature(columns: Iterable[str]) -> str:
    """What a scan saw of a relation: its column names (types print differently per reader)."""
    return hashlib.sha1("\n".join(sorted(c.lower() for c in columns)).encode()).hexdigest()


def needs_scan(model: str, columns: Iterable[str]) -> bool:
    """Never scanned, or its columns changed since the last scan (the audit log holds each scan)."""
    last = audit.entries(action=SCAN_ACTION, object_type="model", object_id=model).first()
    return last is None or (last.details or {}).get("signature") != signature(columns)


def _q(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def relation_of(model: str) -> str | None:
    """The production relation of a model on main, quoted; None for an ephemeral one (no relation)."""
    from models_service.git_store import MAIN_REF
    from models_service.repo import get_store
    from runner import runs
    from runner import warehouse as wh

    sha = get_store().tip(MAIN_REF)
    if sha is None:
        raise NotFound("The repository has no main branch yet.")
    manifest = runs.manifest_for(sha, wh.production_schema())
    uid = manifest.project.model_uid(model)
    if uid is None:
        raise NotFound(f"There is no model {model} on main.")
    if manifest.nodes[uid].materialized == "ephemeral" or uid not in manifest.relations:
        return None
    return manifest.relation_sql(uid)


def sample_relation(relation: str, limit: int = SAMPLE_SIZE) -> tuple[list[dict[str, str]], dict[str, list[Any]]]:
    """The relation's columns, and up to `limit` non-null values of each text column, read through the
    warehouse's read-only, time-limited preview. One wide read first; a sparse column gets its own."""
    from runner import warehouse as wh

    warehouse = wh.get_warehouse()
    columns = warehouse.preview(f"select * from {relation}", 0).columns
    text = [c["name"] for c in columns if is_text(str(c.get("type", "")))]
    samples: dict[str, list[Any]] = {name: [] for name in text}
    if not text:
        return columns, samples
    wide = warehouse.preview(f"select {', '.join(_q(n) for n in text)} from {relation}", limit * 5)
    for row in wide.rows:
        for name, value in zip(text, row, strict=False):
            if value is not None and len(samples[name]) < limit:
                samples[name].append(value)
    if wide.truncated:
        for name in text:
            if len(samples[name]) < limit:
                col = _q(name)
                one = warehouse.preview(f"select {col} from {relation} where {col} is not null", limit)
                samples[name] = [r[0] for r in one.rows]
    return columns, samples


@dataclass
class ScanResult:
    model: str
    columns: int = 0
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    reopened: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "columns": self.columns, "created": self.created, "updated": self.updated,
                "reopened": self.reopened, "removed": self.removed, "skipped": self.skipped}


def scan_model(model: str, *, actor: Any = None, source: str = "worker") -> ScanResult:
    """Sample the model's production relation, detect PII per column and keep the findings."""
    result = ScanResult(model)
    relation = relation_of(model)
    if relation is None:
        result.skipped = "ephemeral: no relation to read"
        return result
    columns, samples = sample_relation(relation)
    findings = [f for c in columns
                if (f := detect_column(c["name"], samples.get(c["name"], ()), sql_type=str(c.get("type", "")),
                                       model=model))]
    names = [c["name"] for c in columns]
    record_findings(model, findings, names, result)
    audit.record(actor, SCAN_ACTION, None, source=source, object_type="model", object_id=model, object_repr=model,
                 details={"signature": signature(names), **{k: v for k, v in result.as_dict().items()
                                                            if k != "model"}})
    return result


def record_findings(model: str, findings: list[Finding], columns: list[str], result: ScanResult | None = None
                    ) -> ScanResult:
    """Keep a scan's findings without overriding people (see the module's docstring). Suggested tags the
    scan no longer supports go; decided tags of a column that is gone stay, marked `gone`."""
    from runner.models import PiiStatus, PiiTag

    result = result or ScanResult(model)
    result.columns = len(columns)
    now = timezone.now()
    present = {c.lower() for c in columns}
    found = {f.column.lower(): f for f in findings}
    with transaction.atomic():
        existing = {t.column.lower(): t for t in PiiTag.objects.select_for_update().filter(model=model)}
        for key, finding in found.items():
            tag = existing.get(key)
            if tag is None:
                try:
                    with transaction.atomic():
                        PiiTag.objects.create(model=model, column=finding.column, category=finding.category,
                                              confidence=finding.confidence, evidence=finding.evidence,
                                              detected_at=now)
                except IntegrityError:  # another scan made it meanwhile: it holds the same finding
                    continue
                result.created.append(finding.column)
            elif tag.status == PiiStatus.REJECTED and finding.category != tag.category:
                _reopen(tag, finding, now)
                result.reopened.append(tag.column)
            else:
                fields = {"confidence": finding.confidence, "evidence": finding.evidence, "detected_at": now}
                if tag.status == PiiStatus.SUGGESTED:
                    fields["category"] = finding.category
                PiiTag.objects.filter(pk=tag.pk).update(**fields)
                result.updated.append(tag.column)
        for key, tag in existing.items():
            if key in found:
                continue
            if tag.status == PiiStatus.SUGGESTED:
                tag.delete()
                result.removed.append(tag.column)
            elif key not in present and not tag.evidence.get("gone"):
                PiiTag.objects.filter(pk=tag.pk).update(evidence={**tag.evidence, "gone": True})
    return result


def _reopen(tag: Any, finding: Finding, now: Any) -> None:
    """A rejected tag whose values now look like another kind of PII: a person must look again."""
    from runner.models import PiiStatus, PiiTag

    who = tag.decided_by.get_username() if tag.decided_by_id else "someone"
    when = f"{tag.decided_at:%Y-%m-%d}" if tag.decided_at else ""
    history = f"Rejected as {tag.category} by {who} {when}: {tag.note}".strip().rstrip(":")
    PiiTag.objects.filter(pk=tag.pk).update(
        status=PiiStatus.SUGGESTED, category=finding.category, confidence=finding.confidence,
        evidence=finding.evidence, detected_at=now, decided_by=None, decided_at=None,
        note=f"{history}\nReopened by a scan: the column now looks like {finding.category}.")


# --------------------------------------------------------------------------- people's part


def list_tags(user: Any, *, model: str = "", status: str = "", category: str = "") -> Any:
    """Tags for people who may see PII (legal, admin), filtered; unknown filters are a 400 that says why."""
    from runner.models import PiiStatus, PiiTag

    access.require(user, "pii.view")
    found = PiiTag.objects.select_related("decided_by").order_by("model", "column")
    if status:
        if status not in PiiStatus.values:
            raise InvalidInput(f"Unknown status {status!r}: use one of {', '.join(PiiStatus.values)}.",
                               field="status")
        found = found.filter(status=status)
    if category:
        if category not in NAME_RULES:
            raise InvalidInput(f"Unknown category {category!r}: use one of {', '.join(NAME_RULES)}.",
                               field="category")
        found = found.filter(category=category)
    if model:
        found = found.filter(model=model)
    return found


def decide_tag(user: Any, tag_id: int, status: str, note: str = "", *, source: str) -> Any:
    """Confirm or reject a tag (the legal role). A rejection says why; deciding again the same way is a
    409. Written compare-and-set, so two reviewers deciding at once do not both win."""
    from runner.models import PiiStatus, PiiTag

    access.require(user, "pii.classify")
    if status not in (PiiStatus.CONFIRMED, PiiStatus.REJECTED):
        raise InvalidInput("A decision is confirmed or rejected.", field="status")
    note = (note or "").strip()
    if status == PiiStatus.REJECTED and not note:
        raise InvalidInput("Say why this column holds no personal data.", field="note")
    if len(note) > 2000:
        raise InvalidInput("The note is longer than 2,000 characters.", field="note")
    tag = PiiTag.objects.filter(pk=tag_id).first()
    if tag is None:
        raise NotFound(f"There is no PII tag {tag_id}.")
    if tag.status == status:
        raise InvalidState(f"{tag.model}.{tag.column} is {status} already.")
    with transaction.atomic():
        won = PiiTag.objects.filter(pk=tag.pk, status=tag.status).update(
            status=status, note=note, decided_by=user, decided_at=timezone.now())
        if not won:
            raise InvalidState(f"{tag.model}.{tag.column} was decided meanwhile: reload to see it.")
        tag.refresh_from_db()
        audit.record(user, f"pii.{'confirm' if status == PiiStatus.CONFIRMED else 'reject'}", tag, source=source,
                     details={"model": tag.model, "column": tag.column, "category": tag.category, "note": note})
    return tag


def request_scan(user: Any, model: str, *, source: str) -> None:
    """Queue a scan of a model on main ("Scan again"), after commit; unknown models are a 404."""
    from models_service.git_store import names
    from runner import preview
    from runner.engine.project import MappingSource, load_project

    access.require(user, "pii.view")
    if not (isinstance(model, str) and names.is_identifier(model)):
        raise InvalidInput(f"{model!r} is not a model name.", field="model")
    try:
        at = preview.project_at(None)
    except preview.PreviewFailed as err:
        raise NotFound(err.message) from None
    if load_project(MappingSource(dict(at.files))).model_uid(model) is None:
        raise NotFound(f"There is no model {model} on main.")
    from . import tasks

    user_id = user.pk
    transaction.on_commit(lambda: tasks.scan_pii.delay(model, user_id))
