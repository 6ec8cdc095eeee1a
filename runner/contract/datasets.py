"""Summarization datasets as JSONL: loading, field mapping and the content hash.

A record has an id, a document and one or more reference summaries. Other field names are mapped
(``--text-field``/``--summary-field``) or detected from common ones. The hash covers the canonical
content of the selected documents, not the file's bytes, so the same documents hash the same however
the file was formatted; every result records it, and reports refuse to compare cells silently when
hashes differ.

A dataset is user input, so every way a file can be wrong ends in a ``DatasetError`` of one line that
names the file, the line and what to change, never in a traceback: the property-based tests feed this
module arbitrary bytes and arbitrary JSON to hold it to that.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from runner.contract.errors import UserError

TEXT_FIELDS = ("document", "text", "article", "source", "content", "input", "dialogue")
SUMMARY_FIELDS = ("summary", "summaries", "highlights", "target", "abstract", "reference", "references", "output")
ID_FIELDS = ("id", "doc_id", "document_id", "uid", "gem_id")

_BOM = b"\xef\xbb\xbf"


class DatasetError(UserError):
    """A dataset file that cannot be used as it is."""


@dataclass(frozen=True)
class Document:
    id: str
    text: str
    references: tuple[str, ...]

    @property
    def canonical(self) -> bytes:
        """The document's content as the dataset hash reads it: id, text and references."""
        return json.dumps([self.id, self.text, list(self.references)], ensure_ascii=False).encode() + b"\n"

    @property
    def sha256(self) -> str:
        """This document's own hash: a resumed run checks its kept records against it."""
        return hashlib.sha256(self.canonical).hexdigest()


@dataclass(frozen=True)
class Dataset:
    path: str
    documents: list[Document]
    sha256: str
    text_field: str
    summary_field: str | None
    id_field: str | None

    def __len__(self) -> int:
        return len(self.documents)


@dataclass(frozen=True)
class Fields:
    text: str
    summary: str | None
    id: str | None


def field_list(record: dict, limit: int = 12) -> str:
    """The record's field names for a message: sorted, odd ones quoted, long lists cut short.

    Field names come from the user's file, so a name holding a newline, or a record with a thousand
    fields, must not turn a one-line error into a page.
    """
    names = sorted(record)
    shown = [_name(n) for n in names[:limit]]
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(shown) + more


def _name(name: str) -> str:
    plain = name.isprintable() and name.strip() == name and "," not in name and name
    return _short(name if plain else repr(name))


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def detect_fields(record: dict, text_field: str | None, summary_field: str | None, id_field: str | None) -> Fields:
    """Pick the text, summary and id fields from explicit names or the common ones."""

    def pick(explicit: str | None, candidates: tuple[str, ...], role: str, required: bool) -> str | None:
        if explicit:
            if explicit not in record:
                raise DatasetError(f"{role} field {explicit!r} not in the first record (fields: {field_list(record)})")
            return explicit
        for name in candidates:
            if name in record:
                return name
        if required:
            raise DatasetError(
                f"no {role} field found among {field_list(record) or 'no fields'}: pass --{role}-field NAME"
            )
        return None

    fields = Fields(
        text=pick(text_field, TEXT_FIELDS, "text", required=True),  # type: ignore[arg-type]
        summary=pick(summary_field, SUMMARY_FIELDS, "summary", required=False),
        id=pick(id_field, ID_FIELDS, "id", required=False),
    )
    if fields.summary == fields.text:
        raise DatasetError(
            f"the text field and the summary field are both {_short(repr(fields.text))}: ROUGE would score each "
            "summary against its own document; pass --text-field and --summary-field naming two fields"
        )
    return fields


def _references(value: object, where: str, name: str) -> tuple[str, ...]:
    if isinstance(value, str):
        refs: tuple[str, ...] = (value,)
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        refs = tuple(value)
    else:
        raise DatasetError(f"{where}: {name!r} must be a string or a list of strings, got {_json_type(value)}")
    refs = tuple(r for r in refs if r.strip())
    if not refs:
        raise DatasetError(f"{where}: empty {name!r}: every document needs a reference summary")
    if any(_has_lone_surrogate(r) for r in refs):
        raise DatasetError(f"{where}: {name!r} holds an invalid \\u escape (half of a surrogate pair)")
    return refs


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    names = {list: "an array", dict: "an object", str: "a string", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _has_lone_surrogate(text: str) -> bool:
    """JSON can spell half of a UTF-16 pair (``"\\ud800"``); no tokenizer and no UTF-8 file can hold one."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def iter_json_lines(path: Path) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) from a JSONL file, streaming; blank lines are ignored."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise DatasetError(
            f"dataset not found: {path}: give a JSONL file, or fetch one with `runner data fetch NAME`"
        ) from None
    except IsADirectoryError:
        raise DatasetError(f"dataset path is a directory, expected a .jsonl file: {path}") from None
    except PermissionError:
        raise DatasetError(f"dataset not readable (permission denied): {path}") from None
    except OSError as exc:
        raise DatasetError(f"cannot open dataset {path}: {exc.strerror or exc}") from None
    with handle:
        number = 0
        while True:
            try:
                raw = handle.readline()
            except OSError as exc:
                raise DatasetError(f"{path}:{number + 1}: cannot read ({exc.strerror or exc})") from None
            if not raw:
                return
            number += 1
            obj = _parse_line(path, number, raw)
            if obj is not None:
                yield number, obj


def _parse_line(path: Path, number: int, raw: bytes) -> dict | None:
    """One line as an object, None when blank; every defect a one-line ``DatasetError``."""
    where = f"{path}:{number}"
    if number == 1 and raw.startswith(_BOM):
        raw = raw[len(_BOM) :]  # the byte-order mark some Windows editors write
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(
            f"{where}: not UTF-8 ({exc.reason} at byte {exc.start}): re-encode the file as UTF-8"
        ) from None
    if not line.strip():
        return None
    line = line.rstrip("\r\n")  # parsed without its newline, a cut-off line's error is at its own end
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DatasetError(_malformed(where, line, exc)) from None
    except RecursionError:
        raise DatasetError(f"{where}: malformed JSON (nested too deeply to parse)") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise DatasetError(f"{where}: malformed JSON ({_short(' '.join(str(exc).split()), 120)})") from None
    if not isinstance(obj, dict):
        raise DatasetError(f"{where}: expected a JSON object per line, got {_json_type(obj)}")
    return obj


def _malformed(where: str, line: str, exc: json.JSONDecodeError) -> str:
    """One line for a line that is not JSON; a JSON array or an object spread over several lines (what
    ``json.dump(..., indent=2)`` writes) gets the conversion that makes JSON Lines of it."""
    joint = " " if exc.msg.endswith(" at") else ", "
    said = f"{where}: malformed JSON ({exc.msg}{joint}column {exc.colno})"
    if exc.pos < len(line.rstrip()) and not exc.msg.startswith("Unterminated string"):
        return said
    if line.strip() == "[" or (line.lstrip().startswith("[") and where.endswith(":1")):
        return f"{said}: the file looks like a JSON array, not JSON Lines; one object per line: `jq -c '.[]' FILE`"
    return (
        f"{said}: the line ends before its JSON value does: a line cut short, or JSON spread over several "
        "lines; JSON Lines holds one whole object per line (`jq -c . FILE` writes it so)"
    )


def _doc_id(record: dict, field: str | None, number: int, where: str) -> str:
    if field is None:
        return f"line-{number}"
    value = record.get(field)
    if value is None or value == "":
        raise DatasetError(f"{where}: missing or empty {field!r}")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DatasetError(f"{where}: {field!r} must be a string or an integer, got {_json_type(value)}")
    doc_id = str(value)
    if not doc_id.strip() or _has_lone_surrogate(doc_id):
        raise DatasetError(f"{where}: {field!r} is blank or not valid text: {_short(repr(doc_id))}")
    return doc_id


def load_dataset(
    path: str | Path,
    *,
    text_field: str | None = None,
    summary_field: str | None = None,
    id_field: str | None = None,
    limit: int | None = None,
    require_summary: bool = True,
) -> Dataset:
    """Load the first ``limit`` documents of a JSONL file, checking every record on the way."""
    path = Path(path)
    fields: Fields | None = None
    documents: list[Document] = []
    seen: dict[str, int] = {}
    digest = hashlib.sha256()
    for number, record in iter_json_lines(path):
        if fields is None:
            try:
                fields = detect_fields(record, text_field, summary_field, id_field)
            except DatasetError as exc:
                raise DatasetError(f"{path}:{number}: {exc}") from None
            if require_summary and fields.summary is None:
                raise DatasetError(
                    f"{path}: no reference summary field (tried {', '.join(SUMMARY_FIELDS)}): pass --summary-field NAME"
                )
        where = f"{path}:{number}"
        text = record.get(fields.text)
        if not isinstance(text, str):
            raise DatasetError(f"{where}: missing or non-string {fields.text!r}")
        if not text.strip():
            raise DatasetError(f"{where}: empty {fields.text!r}")
        if _has_lone_surrogate(text):
            raise DatasetError(f"{where}: {fields.text!r} holds an invalid \\u escape (half of a surrogate pair)")
        refs: tuple[str, ...] = ()
        if fields.summary is not None:
            if fields.summary not in record:
                raise DatasetError(f"{where}: missing {fields.summary!r}")
            refs = _references(record[fields.summary], where, fields.summary)
        doc_id = _doc_id(record, fields.id, number, where)
        if doc_id in seen:
            raise DatasetError(
                f"{where}: duplicate id {_short(repr(doc_id))} (first on line {seen[doc_id]}): ids must be unique"
            )
        seen[doc_id] = number
        doc = Document(doc_id, text, refs)
        digest.update(doc.canonical)
        documents.append(doc)
        if limit is not None and len(documents) >= limit:
            break
    if fields is None or not documents:
        raise DatasetError(f"{path}: no records (empty file): expected one JSON object per line")
    return Dataset(
        path=str(path),
        documents=documents,
        sha256=digest.hexdigest(),
        text_field=fields.text,
        summary_field=fields.summary,
        id_field=fields.id,
    )
