"""ARM state in SQLite: resources, operations and counters, under ``<state>/arm.sqlite3``.

A resource is stored under its id in lower case (ARM ids are case-insensitive) with its ARM
representation (``body``, what GET answers before computed fields are added) and the emulator's
private bookkeeping (``internal``: machine keys, replication progress, blob ids). One
connection is shared by every thread behind ``lock``; hold ``lock`` across a read-modify-write.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    key TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    seq INTEGER NOT NULL,
    body TEXT NOT NULL,
    internal TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS resources_type ON resources (type);
CREATE TABLE IF NOT EXISTS operations (id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass
class Resource:
    """One ARM resource as stored."""

    id: str
    type: str
    body: dict[str, Any]
    internal: dict[str, Any] = field(default_factory=dict)
    seq: int = 0

    @property
    def key(self) -> str:
        return self.id.lower()

    @property
    def properties(self) -> dict[str, Any]:
        return self.body.setdefault("properties", {})


class Store:
    """Thread-safe access to the SQLite state file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self.lock:
            self._db.close()

    # resources -------------------------------------------------------------------------

    def get(self, resource_id: str) -> Resource | None:
        with self.lock:
            row = self._db.execute(
                "SELECT id, type, seq, body, internal FROM resources WHERE key = ?",
                (resource_id.lower(),),
            ).fetchone()
        return _resource(row) if row else None

    def put(self, resource: Resource) -> Resource:
        """Insert or replace; a new resource gets the next sequence number (list order)."""
        with self.lock:
            if not resource.seq:
                existing = self._db.execute(
                    "SELECT seq FROM resources WHERE key = ?", (resource.key,)
                ).fetchone()
                resource.seq = existing[0] if existing else self.next_value("resource-seq")
            self._db.execute(
                "INSERT OR REPLACE INTO resources (key, id, type, seq, body, internal) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    resource.key,
                    resource.id,
                    resource.type.lower(),
                    resource.seq,
                    json.dumps(resource.body),
                    json.dumps(resource.internal),
                ),
            )
        return resource

    def delete(self, resource_id: str) -> None:
        with self.lock:
            self._db.execute("DELETE FROM resources WHERE key = ?", (resource_id.lower(),))

    def resources(self, type_name: str | None = None, under: str | None = None) -> list[Resource]:
        """Resources of a type (any when None) whose id starts with ``under/``, oldest first."""
        sql = "SELECT id, type, seq, body, internal FROM resources WHERE 1 = 1"
        args: list[Any] = []
        if type_name:
            sql += " AND type = ?"
            args.append(type_name.lower())
        if under:
            prefix = under.lower().rstrip("/") + "/"
            sql += " AND substr(key, 1, ?) = ?"
            args += [len(prefix), prefix]
        with self.lock:
            rows = self._db.execute(sql + " ORDER BY seq", args).fetchall()
        return [_resource(row) for row in rows]

    def count_by_type(self) -> dict[str, int]:
        with self.lock:
            rows = self._db.execute("SELECT type, count(*) FROM resources GROUP BY type").fetchall()
        return {type_name: count for type_name, count in rows}

    # operations ------------------------------------------------------------------------

    def get_operation(self, op_id: str) -> dict[str, Any] | None:
        with self.lock:
            row = self._db.execute(
                "SELECT body FROM operations WHERE id = ?", (op_id.lower(),)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def put_operation(self, op: dict[str, Any]) -> None:
        with self.lock:
            self._db.execute(
                "INSERT OR REPLACE INTO operations (id, body) VALUES (?, ?)",
                (op["id"].lower(), json.dumps(op)),
            )

    def operations(self) -> list[dict[str, Any]]:
        with self.lock:
            rows = self._db.execute("SELECT body FROM operations").fetchall()
        return [json.loads(row[0]) for row in rows]

    # counters --------------------------------------------------------------------------

    def next_value(self, name: str) -> int:
        """1, 2, 3, ... per name, persisted (addresses, sequence numbers)."""
        with self.lock:
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, 1) "
                "ON CONFLICT(key) DO UPDATE SET value = value + 1",
                (name,),
            )
            return int(
                self._db.execute("SELECT value FROM meta WHERE key = ?", (name,)).fetchone()[0]
            )


def _resource(row: tuple[Any, ...]) -> Resource:
    resource_id, type_name, seq, body, internal = row
    return Resource(resource_id, type_name, json.loads(body), json.loads(internal), seq)
