"""Summarization datasets as JSONL: loading, field mapping and the content hash.

A record has an id, a document and one or more reference summaries. Other field names are mapped
(``--text-field``/``--summary-field``) or detected from common ones. The hash covers the canonical
content of the selected documents, not the file's bytes, so the same documents hash the same however
the file was formatted; every result records it, and reports refuse to compare cells silently when
hashes differ.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from runner.errors import UserError

TEXT_FIELDS = ("document", "text", "article", "source", "content", "input", "dialogue")
SUMMARY_FIELDS = ("summary", "summaries", "highlights", "target", "abstract", "reference", "references", "output")
ID_FIELDS = ("id", "doc_id", "document_id", "uid", "gem_id")


class DatasetError(UserError):
    """A dataset file that cannot be used as it is."""


@dataclass(frozen=True)
class Document:
    id: str
    text: str
    references: tuple[str, ...]


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


def detect_fields(record: dict, text_field: str | None, summary_field: str | None, id_field: str | None) -> Fields:
    """Pick the text, summary and id fields from explicit names or the common ones."""

    def pick(explicit: str | None, candidates: tuple[str, ...], role: str, required: bool) -> str | None:
        if explicit:
            if explicit not in record:
                raise DatasetError(
                    f"{role} field {explicit!r} not in the first record (fields: {', '.join(sorted(record))})"
                )
            return explicit
        for name in candidates:
            if name in record:
                return name
        if required:
            raise DatasetError(
                f"no {role} field found among {', '.join(sorted(record)) or 'no fields'}: "
                f"pass --{role}-field NAME"
            )
        return None

    return Fields(
        text=pick(text_field, TEXT_FIELDS, "text", required=True),  # type: ignore[arg-type]
        summary=pick(summary_field, SUMMARY_FIELDS, "summary", required=False),
        id=pick(id_field, ID_FIELDS, "id", required=False),
    )


def _references(value: object, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        refs: tuple[str, ...] = (value,)
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        refs = tuple(value)
    else:
        raise DatasetError(f"{where}: summary must be a string or a list of strings")
    refs = tuple(r for r in refs if r.strip())
    if not refs:
        raise DatasetError(f"{where}: empty summary")
    return refs


def iter_json_lines(path: Path) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) from a JSONL file, streaming; blank lines are ignored."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise DatasetError(f"dataset not found: {path}") from None
    except IsADirectoryError:
        raise DatasetError(f"dataset path is a directory, expected a .jsonl file: {path}") from None
    except PermissionError:
        raise DatasetError(f"dataset not readable (permission denied): {path}") from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DatasetError(f"{path}:{number}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{number}: malformed JSON ({exc.msg}, column {exc.colno})") from None
            if not isinstance(obj, dict):
                raise DatasetError(f"{path}:{number}: expected a JSON object, got {type(obj).__name__}")
            yield number, obj


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
            fields = detect_fields(record, text_field, summary_field, id_field)
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
        refs: tuple[str, ...] = ()
        if fields.summary is not None:
            if fields.summary not in record:
                raise DatasetError(f"{where}: missing {fields.summary!r}")
            refs = _references(record[fields.summary], where)
        doc_id = str(record.get(fields.id, "")) if fields.id else f"line-{number}"
        if not doc_id:
            raise DatasetError(f"{where}: missing or empty {fields.id!r}")
        if doc_id in seen:
            raise DatasetError(f"{where}: duplicate id {doc_id!r} (first on line {seen[doc_id]})")
        seen[doc_id] = number
        doc = Document(doc_id, text, refs)
        digest.update(json.dumps([doc.id, doc.text, list(doc.references)], ensure_ascii=False).encode() + b"\n")
        documents.append(doc)
        if limit is not None and len(documents) >= limit:
            break
    if fields is None or not documents:
        raise DatasetError(f"{path}: no records (empty file)")
    return Dataset(
        path=str(path),
        documents=documents,
        sha256=digest.hexdigest(),
        text_field=fields.text,
        summary_field=fields.summary,
        id_field=fields.id,
    )
