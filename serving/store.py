"""The review store: documents, the answers given on them, and analysts' corrections, kept in a database.

SQLite (a file, the default) or PostgreSQL, through SQLAlchemy 2; the schema is created and changed only
by the Alembic migrations in `serving/migrations`. Every method is one transaction and is synchronous:
the API calls it from a worker thread.
"""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    String,
    Text,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from training.labels import STANCE_LABELS

DEFAULT_DATABASE_URL = "sqlite:///data/stanceline.db"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class Base(DeclarativeBase):
    pass


class DocumentRow(Base):
    """A text a user asked about, stored once however often it is sent (keyed by its SHA-256)."""

    __tablename__ = "documents"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    text: Mapped[str] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(DateTime)
    published: Mapped[datetime] = mapped_column(DateTime, index=True)
    """When the text was published (UTC): as given with it, else the time it was received (migration 0003)."""
    published_source: Mapped[str] = mapped_column(String(8), server_default="received")
    """`given` when the date came with the document, `received` when the received time stands in for it."""
    split: Mapped[str | None] = mapped_column(String(8))
    """train, dev or test: fixed the first time the document's reviews are exported, so a held-out
    document never moves into a later model's training data."""


class PredictionRow(Base):
    """One answer a model gave on a stored document."""

    __tablename__ = "predictions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    model_name: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[str] = mapped_column(String(200))
    answer: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class ReviewRow(Base):
    """An analyst's correction of one (party, issue) pair of a stored document."""

    __tablename__ = "reviews"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    party: Mapped[str] = mapped_column(String(100))
    issue: Mapped[str] = mapped_column(String(100))
    stance: Mapped[str] = mapped_column(String(16))
    sentiment: Mapped[str] = mapped_column(String(16))
    evidence: Mapped[list] = mapped_column(JSON)
    reviewer: Mapped[str] = mapped_column(String(100))
    evidence_source: Mapped[str] = mapped_column(String(16), server_default="request")
    """`request` when the evidence was sent, `cited` when taken from the stored answer (migration 0002)."""
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    model_name: Mapped[str | None] = mapped_column(String(200))
    model_version: Mapped[str | None] = mapped_column(String(200))
    predicted_stance: Mapped[str | None] = mapped_column(String(16))
    predicted_sentiment: Mapped[str | None] = mapped_column(String(16))
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    """SHA-256 of everything the reviewer said: the same correction posted twice is stored once."""


ANONYMOUS = "anonymous"
"""The reviewer of a review posted without one to a server without API keys."""


class StoreError(ValueError):
    """A request the store cannot carry out; `code` is one of the service's error codes."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def utc_now() -> datetime:
    """Naive UTC: SQLite keeps no time zone, so every stored time is UTC without one."""
    return datetime.now(UTC).replace(tzinfo=None)


def as_utc(moment: datetime) -> datetime:
    """A naive UTC datetime for comparison with stored times (naive input is taken as UTC); a moment
    whose zone pushes it past the calendar's ends is clamped to them."""
    if not moment.tzinfo:
        return moment
    try:
        return moment.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        return datetime.max if moment.year > 1 else datetime.min


def refuse_nul(**fields: str | None) -> None:
    """PostgreSQL cannot keep U+0000 in text; refused on every database, so both behave the same."""
    for name, value in fields.items():
        if value and "\x00" in value:
            raise StoreError("invalid_request", f"{name} contains a NUL character (U+0000), which the store cannot keep")


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def isoformat(moment: datetime) -> str:
    return moment.replace(tzinfo=UTC).isoformat()


def create_database_engine(url: str) -> Engine:
    """An engine for `url`. SQLite gets write-ahead logging, full fsync on commit (a 2xx answer means the
    row is on disk), foreign keys, and transactions that take the write lock when they begin, so
    concurrent writers wait for each other instead of failing with "database is locked"."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" below opens transactions instead
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=30000"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def alembic_config(engine: Engine):
    """Alembic's configuration for this package's migrations, run on `engine`."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine, revision: str = "head", down: bool = False) -> None:
    """Upgrade (or downgrade) the schema to `revision`."""
    from alembic import command

    config = alembic_config(engine)
    (command.downgrade if down else command.upgrade)(config, revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def fingerprint(values: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def review_dict(row: ReviewRow) -> dict[str, Any]:
    """A review as the API answers it."""
    model = {"name": row.model_name, "version": row.model_version} if row.model_name else None
    predicted = (
        {"stance": row.predicted_stance, "sentiment": row.predicted_sentiment} if row.predicted_stance is not None else None
    )
    return {
        "id": row.id,
        "document_id": row.document_id,
        "party": row.party,
        "issue": row.issue,
        "stance": row.stance,
        "sentiment": row.sentiment,
        "evidence": [list(span) for span in row.evidence],
        "reviewer": row.reviewer,
        "evidence_source": row.evidence_source,
        "note": row.note,
        "created_at": isoformat(row.created_at),
        "model": model,
        "predicted": predicted,
    }


def check_evidence(evidence: list[list[int]], text: str) -> None:
    """Evidence offsets must cut words out of the stored text (code points, end exclusive)."""
    for index, (start, end) in enumerate(evidence):
        if start >= end:
            raise StoreError(
                "invalid_request",
                f"evidence[{index}]: [{start}, {end}] is empty or reversed: a span's start must be below its end",
            )
        if end > len(text):
            raise StoreError(
                "invalid_request", f"evidence[{index}]: [{start}, {end}] is outside the document (length {len(text)})"
            )
        if not text[start:end].strip():
            raise StoreError("invalid_request", f"evidence[{index}]: [{start}, {end}] covers only whitespace")


class Store:
    """The database behind `/v1/reviews` and `stanceline reviews`. Opening it brings the schema up to date."""

    def __init__(self, url: str = DEFAULT_DATABASE_URL, upgrade: bool = True) -> None:
        self.url = url
        self.engine = create_database_engine(url)
        if upgrade:
            migrate(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def describe(self) -> str:
        """The URL without its password, for logs and messages."""
        return make_url(self.url).render_as_string(hide_password=True)

    def _insert(self, table):
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)

    def _document_id(self, session: Session, text: str, source: str | None, published: datetime | None) -> int:
        """The stored document's id, storing it first if new. A date sent for a document stored without one
        replaces its received time; a date it already has stays (the first given date wins)."""
        digest = text_sha256(text)
        now = utc_now()
        values = {
            "sha256": digest,
            "text": text,
            "source": source,
            "received_at": now,
            "published": as_utc(published) if published else now,
            "published_source": "given" if published else "received",
        }
        session.execute(self._insert(DocumentRow).values(**values).on_conflict_do_nothing(index_elements=["sha256"]))
        row = session.scalar(select(DocumentRow).where(DocumentRow.sha256 == digest))
        if published and row.published_source == "received":
            row.published, row.published_source = values["published"], "given"
        return row.id

    def store_answer(
        self,
        text: str,
        source: str | None,
        model: dict[str, str],
        answer: dict[str, Any],
        published: datetime | None = None,
    ) -> int:
        """Keep a document (once) and the answer a model gave on it; returns the document's id. Without
        `published`, the time it was received stands in for its publication date (marked `received`)."""
        refuse_nul(text=text, source=source)
        with Session(self.engine) as session, session.begin():
            document_id = self._document_id(session, text, source, published)
            session.add(
                PredictionRow(
                    document_id=document_id,
                    model_name=model["name"],
                    model_version=model["version"],
                    answer=answer,
                    created_at=utc_now(),
                )
            )
        return document_id

    def document(self, document_id: int) -> dict[str, Any] | None:
        with Session(self.engine) as session:
            row = session.get(DocumentRow, document_id)
            if row is None:
                return None
            return {
                "id": row.id,
                "sha256": row.sha256,
                "text": row.text,
                "source": row.source,
                "received_at": isoformat(row.received_at),
                "published": isoformat(row.published),
                "published_source": row.published_source,
            }

    def _latest_answers(self, start: datetime | None, end: datetime | None, after: int = 0):
        """(document, its newest answer) of every stored document published in [start, end), by document id."""
        newest = (
            select(PredictionRow.document_id, func.max(PredictionRow.id).label("prediction_id"))
            .group_by(PredictionRow.document_id)
            .subquery()
        )
        query = (
            select(DocumentRow, PredictionRow.answer)
            .join(newest, newest.c.document_id == DocumentRow.id)
            .join(PredictionRow, PredictionRow.id == newest.c.prediction_id)
            .where(DocumentRow.id > after)
            .order_by(DocumentRow.id)
        )
        if start is not None:
            query = query.where(DocumentRow.published >= as_utc(start))
        if end is not None:
            query = query.where(DocumentRow.published < as_utc(end))
        return query

    def stance_rows(self, start: datetime | None = None, end: datetime | None = None) -> list[dict[str, Any]]:
        """One row per (document, pair) of the newest answer on each document published in [start, end):
        the input of `serving.trends` (its PAIR_COLUMNS)."""
        rows = []
        with Session(self.engine) as session:
            for document, answer in session.execute(self._latest_answers(start, end)):
                for result in answer.get("results", []):
                    scores = result["stance"]["scores"]
                    rows.append(
                        {
                            "document": str(document.id),
                            "published": document.published,
                            "published_source": document.published_source,
                            "party": result["party"],
                            "issue": result.get("issue"),
                            "stance": result["stance"]["label"],
                            **{label: float(scores.get(label, 0.0)) for label in STANCE_LABELS},
                        }
                    )
        return rows

    def pair_documents(
        self,
        party: str,
        issue: str | None,
        start: datetime,
        end: datetime,
        after: int = 0,
        limit: int = 20,
    ) -> list[dict[str, Any]]:
        """A page of the documents published in [start, end) whose newest answer has the pair, with that
        answer's stance and evidence for it, by document id after `after`."""
        found: list[dict[str, Any]] = []
        with Session(self.engine) as session:
            for document, answer in session.execute(self._latest_answers(start, end, after)):
                result = _pair_answer(answer, party, issue)
                if result is None:
                    continue
                found.append(
                    {
                        "document_id": document.id,
                        "published": isoformat(document.published),
                        "published_source": document.published_source,
                        "source": document.source,
                        "excerpt": document.text[:300],
                        "stance": result["stance"],
                        "sentiment": result["sentiment"],
                        "evidence": result.get("evidence", []),
                    }
                )
                if len(found) == limit:
                    break
        return found

    def add_review(self, review: dict[str, Any], reviewer: str = ANONYMOUS) -> tuple[dict[str, Any], bool]:
        """Store a correction; returns it and whether it is new (False: the identical one was stored before).

        The answer the newest stored prediction gave for the pair is kept beside it, so agreement between
        the served model and reviewers can be followed over time. A review without `evidence` takes the
        windows that answer cited for the pair (an analyst flipping a label need not select text), and one
        without `reviewer` is made by `reviewer` (the caller's API key name, or `anonymous`); the returned
        review's `evidence_source` says which evidence was kept."""
        said = {key: review.get(key) for key in ("document_id", "party", "issue", "stance", "sentiment")}
        said["reviewer"] = review.get("reviewer") or reviewer
        said["note"] = review.get("note") or ""
        refuse_nul(**{key: said[key] for key in ("party", "issue", "reviewer", "note")})
        with Session(self.engine) as session, session.begin():
            document = session.get(DocumentRow, said["document_id"])
            if document is None:
                raise StoreError("not_found", f"document {said['document_id']} is not stored: predict with store=true first")
            prediction = session.scalar(
                select(PredictionRow).where(PredictionRow.document_id == document.id).order_by(PredictionRow.id.desc()).limit(1)
            )
            model_answer = _pair_answer(prediction.answer, said["party"], said["issue"]) if prediction else None
            if review.get("evidence"):
                said["evidence"] = [list(span) for span in review["evidence"]]
                evidence_source = "request"
            else:
                said["evidence"] = cited_evidence(model_answer, said["party"], said["issue"])
                evidence_source = "cited"
            check_evidence(said["evidence"], document.text)
            key = fingerprint(said)
            existing = session.scalar(select(ReviewRow).where(ReviewRow.fingerprint == key))
            if existing is not None:
                return review_dict(existing), False
            values = {
                **said,
                "evidence_source": evidence_source,
                "created_at": utc_now(),
                "model_name": prediction.model_name if prediction else None,
                "model_version": prediction.model_version if prediction else None,
                "predicted_stance": model_answer["stance"]["label"] if model_answer else None,
                "predicted_sentiment": model_answer["sentiment"]["label"] if model_answer else None,
                "fingerprint": key,
            }
            inserted = session.scalar(
                self._insert(ReviewRow)
                .values(**values)
                .on_conflict_do_nothing(index_elements=["fingerprint"])
                .returning(ReviewRow.id)
            )
            row = session.scalar(select(ReviewRow).where(ReviewRow.fingerprint == key))
            return review_dict(row), inserted is not None

    def reviews(
        self,
        *,
        document_id: int | None = None,
        model: str | None = None,
        stance: str | None = None,
        sentiment: str | None = None,
        reviewer: str | None = None,
        since: datetime | None = None,
        after: int = 0,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """A page of reviews in the order they were stored, after review id `after`."""
        query = select(ReviewRow).where(ReviewRow.id > after).order_by(ReviewRow.id).limit(limit)
        filters = {
            ReviewRow.document_id: document_id,
            ReviewRow.model_name: model,
            ReviewRow.stance: stance,
            ReviewRow.sentiment: sentiment,
            ReviewRow.reviewer: reviewer,
        }
        for column, value in filters.items():
            if value is not None:
                query = query.where(column == value)
        if since is not None:
            query = query.where(ReviewRow.created_at >= as_utc(since))
        with Session(self.engine) as session:
            return [review_dict(row) for row in session.scalars(query)]

    def count_reviews(self) -> int:
        with Session(self.engine) as session:
            return session.scalar(select(func.count(ReviewRow.id))) or 0

    def reviewed_documents(self) -> tuple[list[dict[str, Any]], int]:
        """Every reviewed document with its newest review per (party, issue), for export and evaluation,
        and how many older reviews were superseded (where reviewers disagree on a pair, the newest stands)."""
        with Session(self.engine) as session:
            rows = session.scalars(select(ReviewRow).order_by(ReviewRow.id)).all()
            latest: dict[int, dict[tuple[str, str], ReviewRow]] = {}
            superseded = 0
            for row in rows:
                pairs = latest.setdefault(row.document_id, {})
                superseded += (row.party, row.issue) in pairs
                pairs[(row.party, row.issue)] = row
            documents = []
            for document_id in sorted(latest):
                document = session.get(DocumentRow, document_id)
                documents.append(
                    {
                        "id": document.id,
                        "sha256": document.sha256,
                        "text": document.text,
                        "source": document.source,
                        "received_at": document.received_at,
                        "split": document.split,
                        "reviews": [review_dict(row) for row in latest[document_id].values()],
                    }
                )
            return documents, superseded

    def assign_splits(self, assignments: dict[int, str]) -> None:
        """Fix the split of documents that have none yet (a set split never changes)."""
        with Session(self.engine) as session, session.begin():
            for document_id, split in assignments.items():
                document = session.get(DocumentRow, document_id)
                if document is not None and document.split is None:
                    document.split = split


def cited_evidence(answer: dict[str, Any] | None, party: str, issue: str) -> list[list[int]]:
    """The spans a stored answer cited for a pair, heaviest first: the default evidence of a review."""
    spans = [[item["start"], item["end"]] for item in (answer or {}).get("evidence", [])]
    if not spans:
        raise StoreError(
            "invalid_request",
            f"no evidence given, and no stored answer cites any for ({party!r}, {issue!r}): send `evidence` "
            "(character offsets of the sentences that show your labels)",
        )
    return spans


def _pair_answer(answer: dict[str, Any], party: str, issue: str) -> dict[str, Any] | None:
    for result in answer.get("results", []):
        if result.get("party") == party and result.get("issue") == issue:
            return result
    return None


class LazyStore:
    """Opens the store on first use, so a server that is never asked to store creates no database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._store: Store | None = None
        self._lock = threading.Lock()

    def get(self) -> Store:
        with self._lock:
            if self._store is None:
                self._store = Store(self.url)
            return self._store

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
