"""Bags of the controller's topics: rosbag2 MCAP files written and read with ``rosbags``, no ROS.

- The message types are registered in a ``rosbags`` typestore from the installed ``moe_loco_msgs``
  .msg text (on top of the ROS 2 Kilted base types), so a bag carries our definitions and a bag
  whose definitions differ from ours is refused by name.
- :class:`BagWriter` survives a killed recorder. ``rosbags``' MCAP writer keeps the open chunk
  (up to 1 MiB) in memory and writes the summary, the footer and ``metadata.yaml`` only in
  ``close()``; its reader needs that footer. A recorder killed with SIGKILL therefore leaves an
  empty ``.mcap`` (short recordings) or chunks without a footer, and ``rosbags`` reads neither
  ("seems to be empty" / "File end magic is invalid"). The writer here closes the chunk and
  flushes it to the OS every ``flush_interval_s`` (SIGKILL does not lose what the kernel holds;
  ``fsync=True`` also covers a power loss), and the file stays a valid MCAP data section.
- :func:`read_bag` reads finished bags through ``rosbags`` and, when that fails, scans the file's
  records itself: every complete chunk before the first cut or damaged record is recovered, and
  the bag says so in :attr:`Bag.notes`. Every problem is a :class:`BagError` naming the file.

The ``rosbags`` internals used (``McapWriter.chunk``, ``close_chunk()``, ``bio``) are those of
the pinned version (requirements: rosbags 0.11.9); :class:`BagWriter` checks they are there.
"""

from __future__ import annotations

import functools
import os
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from moe_loco_controller.core.ros_names import check_namespace

MSG_PACKAGE = "moe_loco_msgs"
MSG_TYPES: dict[str, str] = {
    "command": "moe_loco_msgs/msg/LocoCommand",
    "status": "moe_loco_msgs/msg/ControllerStatus",
    "robot_state": "moe_loco_msgs/msg/RobotState",
    "joint_command": "moe_loco_msgs/msg/JointCommand",
}
"""The controller's topics (relative to its namespace) and their message types."""

STANDARD_TOPICS: dict[str, tuple[str, str]] = {
    "joint_states": ("/joint_states", "sensor_msgs/msg/JointState"),
    "imu/data": ("/imu/data", "sensor_msgs/msg/Imu"),
    "estimated_velocity": ("estimated_velocity", "geometry_msgs/msg/TwistStamped"),
    "diagnostics": ("/diagnostics", "diagnostic_msgs/msg/DiagnosticArray"),
    "cmd_vel": ("/cmd_vel", "geometry_msgs/msg/Twist"),
}
"""The ROS-convention topics the controller publishes (and ``cmd_vel``, which it reads): name ->
(topic: absolute, or relative to the namespace; message type)."""

RECORDED_TOPICS: tuple[str, ...] = (*MSG_TYPES, *STANDARD_TOPICS)
"""What ``moe-loco-record`` records by default."""

MCAP_MAGIC = b"\x89MCAP0\r\n"
_OP_FOOTER, _OP_SCHEMA, _OP_CHANNEL, _OP_MESSAGE, _OP_CHUNK = 0x02, 0x03, 0x04, 0x05, 0x06


class BagError(Exception):
    """A bag that cannot be written or read; ``str()`` names the file and what is wrong."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def topic_types(namespace: str = "moe_loco", names: Iterable[str] = MSG_TYPES) -> dict[str, str]:
    """Fully qualified topic name -> message type, for ``names`` (of :data:`MSG_TYPES`, under
    ``namespace``, or of :data:`STANDARD_TOPICS`; ``ValueError`` for an unknown name or a
    namespace ROS 2 would refuse)."""
    ns = check_namespace(namespace).strip("/")
    out = {}
    for name in names:
        if name in MSG_TYPES:
            topic, msgtype = name, MSG_TYPES[name]
        elif name in STANDARD_TOPICS:
            topic, msgtype = STANDARD_TOPICS[name]
        else:
            known = sorted([*MSG_TYPES, *STANDARD_TOPICS])
            raise ValueError(f"unknown topic {name!r}; known: {known}")
        if topic.startswith("/"):
            out[topic] = msgtype
        else:
            out[f"/{ns}/{topic}" if ns else f"/{topic}"] = msgtype
    return out


# ---------------------------------------------------------------------- message definitions
def msg_definitions_dir() -> Path:
    """Where the ``moe_loco_msgs`` .msg files are: the ament share dir (what the Python types were
    generated from), else ``<prefix>/share``, else the source tree beside this package."""
    candidates: list[Path] = []
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory(MSG_PACKAGE)) / "msg")
    except Exception:  # no ament index or package not in it: try the other places
        pass
    candidates.append(Path(sys.prefix) / "share" / MSG_PACKAGE / "msg")
    candidates.append(Path(__file__).resolve().parents[2] / MSG_PACKAGE / "msg")
    for c in candidates:
        if all((c / f"{t.rsplit('/', 1)[1]}.msg").is_file() for t in MSG_TYPES.values()):
            return c
    raise BagError(
        candidates[0],
        f"cannot find the {MSG_PACKAGE} .msg files (looked in {[str(c) for c in candidates]})",
    )


@functools.cache
def typestore() -> Typestore:
    """A typestore with the ROS 2 base types and ours, registered from the .msg text."""
    store = get_typestore(Stores.ROS2_KILTED)
    directory = msg_definitions_dir()
    types: dict[str, Any] = {}
    for path in sorted(directory.glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"{MSG_PACKAGE}/msg/{path.stem}"))
    store.register(types)
    return store


def type_hash(msgtype: str, msgdef: str | None = None) -> str:
    """RIHS01 hash of ``msgtype``: ours, or the one described by a bag's ``msgdef`` text."""
    if msgdef is None:
        return typestore().hash_rihs01(msgtype)
    store = get_typestore(Stores.EMPTY)
    store.register(get_types_from_msg(msgdef, msgtype))
    return store.hash_rihs01(msgtype)


# ---------------------------------------------------------------------- writing
class BagWriter:
    """A rosbag2 directory with one MCAP file, flushed in small chunks as it is written.

    ``topics``: fully qualified topic name -> message type (ours or a ROS 2 base type). Messages
    are CDR bytes (``rclpy.serialization.serialize_message`` or a typestore's ``serialize_cdr``)
    with a timestamp in nanoseconds. Use as a context manager or call :meth:`close`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        topics: Mapping[str, str],
        *,
        flush_interval_s: float = 0.5,
        fsync: bool = False,
        custom_data: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        if self.path.exists():
            raise BagError(self.path, "exists already; the recorder never overwrites a bag")
        if not flush_interval_s > 0:
            raise ValueError(f"flush_interval_s must be > 0, got {flush_interval_s}")
        self.flush_interval_s = float(flush_interval_s)
        self.fsync = fsync
        self.counts: dict[str, int] = dict.fromkeys(topics, 0)
        self._clock = clock
        self._lock = threading.Lock()
        self._closed = False
        store = typestore()
        self._writer = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        for key, value in (custom_data or {}).items():
            self._writer.set_custom_data(key, value)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer.open()
        except OSError as e:
            raise BagError(self.path, f"cannot create the bag: {e.strerror or e}") from None
        self._storage: Any = self._writer.storage
        for attr in ("chunk", "close_chunk", "bio"):
            if not hasattr(self._storage, attr):
                self._writer.abort()
                raise BagError(
                    self.path,
                    f"rosbags' MCAP writer has no {attr!r} (rosbags "
                    "0.11.9 expected): cannot write a bag that survives a crash",
                )
        try:
            self._connections = {
                topic: self._writer.add_connection(topic, msgtype, typestore=store)
                for topic, msgtype in topics.items()
            }
        except Exception as e:
            self._writer.abort()
            raise BagError(self.path, f"cannot register the topics: {e}") from None
        self._storage.bio.flush()  # the MCAP magic and header are on disk from the start
        self._last_flush = clock()

    @property
    def mcap_path(self) -> Path:
        """The MCAP file inside the bag directory."""
        return Path(self._storage.path)

    def write(self, topic: str, timestamp_ns: int, data: bytes | memoryview) -> None:
        """Append one message; flush if ``flush_interval_s`` has passed since the last flush."""
        with self._lock:
            if self._closed:
                raise BagError(self.path, "write after close")
            try:
                connection = self._connections[topic]
            except KeyError:
                raise ValueError(f"topic {topic!r} was not registered with this bag") from None
            self._writer.write(connection, int(timestamp_ns), bytes(data))
            self.counts[topic] += 1
            if self._clock() - self._last_flush >= self.flush_interval_s:
                self._flush()

    def flush(self) -> None:
        """Close the open chunk and hand it to the OS (it survives SIGKILL from then on)."""
        with self._lock:
            if not self._closed:
                self._flush()

    def flush_if_due(self) -> None:
        """:meth:`flush` if ``flush_interval_s`` has passed since the last one (for a timer)."""
        with self._lock:
            if not self._closed and self._clock() - self._last_flush >= self.flush_interval_s:
                self._flush()

    def _flush(self) -> None:
        if self._storage.chunk.msgs:  # a chunk without messages would have no time range
            self._storage.close_chunk()
        self._storage.bio.flush()
        if self.fsync:
            os.fsync(self._storage.bio.fileno())
        self._last_flush = self._clock()

    def close(self) -> None:
        """Write the summary, the footer and ``metadata.yaml`` (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._writer.close()

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# ---------------------------------------------------------------------- reading
@dataclass(frozen=True)
class BagTopic:
    name: str
    msgtype: str
    msgdef: str
    """The message definition stored in the bag ('' if it has none)."""
    count: int


@dataclass
class Bag:
    """A bag read into memory: its topics and its messages in timestamp order."""

    path: Path
    topics: dict[str, BagTopic]
    messages: list[tuple[str, int, bytes]]
    """(topic, timestamp [ns], CDR bytes), sorted by timestamp (stable)."""
    recovered: bool = False
    """True if the bag was incomplete (no footer/summary) and only its readable prefix is here."""
    notes: list[str] = field(default_factory=list)
    """What was wrong with an incomplete bag and what was recovered, one line each."""

    def of(self, topic: str) -> list[tuple[int, bytes]]:
        """(timestamp, bytes) of one topic, in order."""
        return [(t, d) for name, t, d in self.messages if name == topic]

    def check_topics(self, required: Mapping[str, str]) -> None:
        """Refuse a bag that lacks a required topic or carries another type or definition."""
        problems = []
        missing = [t for t in required if t not in self.topics or self.topics[t].count == 0]
        if missing:
            have = ", ".join(f"{t} ({i.count})" for t, i in sorted(self.topics.items()))
            problems.append(
                f"no messages on {', '.join(missing)} (the bag has: {have or 'no topic'})"
            )
        for topic, msgtype in required.items():
            info = self.topics.get(topic)
            if topic in missing or info is None:
                continue
            if info.msgtype != msgtype:
                problems.append(f"{topic} has type {info.msgtype}, expected {msgtype}")
                continue
            if info.msgdef:
                try:
                    theirs = type_hash(msgtype, info.msgdef)
                except Exception as e:
                    problems.append(
                        f"{topic}: cannot parse the stored definition of {msgtype}: {e}"
                    )
                    continue
                if theirs != type_hash(msgtype):
                    problems.append(
                        f"{topic}: the bag's definition of {msgtype} differs from ours "
                        f"({theirs} != {type_hash(msgtype)}): recorded with other interfaces"
                    )
        if problems:
            raise BagError(self.path, "; ".join(problems))


def read_bag(path: str | os.PathLike[str]) -> Bag:
    """Read a bag (a rosbag2 directory, or an ``.mcap`` file) into memory.

    A bag without its footer/summary or ``metadata.yaml`` (the recorder was killed) is recovered
    up to its last complete chunk (``recovered`` and ``notes`` say so); a bag with nothing
    readable, a missing path or a file that is not a bag raise :class:`BagError`.
    """
    p = Path(path)
    if not p.exists():
        raise BagError(p, "no such file or directory")
    if p.is_dir():
        return _read_dir(p)
    return _read_file(p)


def _read_dir(p: Path) -> Bag:
    files = sorted(p.glob("*.mcap"))
    if (p / "metadata.yaml").is_file():
        try:
            return _read_rosbags(p, p)
        except Exception as e:
            if not files:
                raise BagError(p, f"unreadable bag: {_reason(e)}") from None
            first = f"metadata.yaml or storage unusable ({_reason(e)})"
    elif files:
        first = "no metadata.yaml (the recording did not finish)"
    else:
        what = ", ".join(sorted(x.name for x in p.iterdir())[:5]) or "empty directory"
        raise BagError(p, f"not a rosbag2 bag: no metadata.yaml and no .mcap file ({what})")
    merged = _merge(p, [_read_file(f) for f in files])
    merged.notes.insert(0, first)
    return merged


def _read_file(p: Path) -> Bag:
    try:
        with p.open("rb") as f:
            head = f.read(len(MCAP_MAGIC))
    except OSError as e:
        raise BagError(p, f"cannot read: {e.strerror or e}") from None
    if p.suffix == ".db3":
        try:
            return _read_rosbags(p, p)
        except Exception as e:
            raise BagError(p, f"unreadable sqlite3 bag: {_reason(e)}") from None
    if not head:
        raise BagError(p, "empty file: the recording ended before anything was flushed")
    if head != MCAP_MAGIC:
        raise BagError(
            p,
            "not a bag: no MCAP magic at the start of the file (expected a "
            "rosbag2 directory or an .mcap file)",
        )
    if p.suffix == ".mcap":
        try:
            return _read_rosbags(p, p)
        except Exception as e:
            why = _reason(e)
    else:
        why = "not an .mcap file name"
    bag = _scan_mcap(p)
    bag.notes.insert(0, f"rosbags cannot read it ({why}); scanned its records instead")
    return bag


def _reason(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.rstrip(".")


def _read_rosbags(p: Path, name: Path) -> Bag:
    topics: dict[str, BagTopic] = {}
    messages: list[tuple[str, int, bytes]] = []
    with Reader(p) as reader:
        for c in reader.connections:
            old = topics.get(c.topic)
            count = c.msgcount + (old.count if old else 0)
            topics[c.topic] = BagTopic(c.topic, c.msgtype, c.msgdef.data or "", count)
        for conn, t, data in reader.messages():
            messages.append((conn.topic, int(t), bytes(data)))
    messages.sort(key=lambda m: m[1])
    return Bag(name, topics, messages)


def _merge(p: Path, bags: list[Bag]) -> Bag:
    topics: dict[str, BagTopic] = {}
    messages: list[tuple[str, int, bytes]] = []
    notes: list[str] = []
    for b in bags:
        for name, info in b.topics.items():
            old = topics.get(name)
            topics[name] = BagTopic(
                name,
                info.msgtype,
                info.msgdef or (old.msgdef if old else ""),
                info.count + (old.count if old else 0),
            )
        messages.extend(b.messages)
        notes.extend(f"{b.path.name}: {n}" for n in b.notes)
    messages.sort(key=lambda m: m[1])
    return Bag(p, topics, messages, recovered=any(b.recovered for b in bags), notes=notes)


class _CutError(Exception):
    """The scan met a record it cannot use: the readable prefix ends here."""


def _string(buf: memoryview, pos: int) -> tuple[str, int]:
    (n,) = struct.unpack_from("<I", buf, pos)
    end = pos + 4 + n
    if end > len(buf):
        raise _CutError("string runs past its record")
    try:
        return bytes(buf[pos + 4 : end]).decode(), end
    except UnicodeDecodeError:
        raise _CutError(f"a string at byte {pos} of a record is not UTF-8") from None


def _records(buf: memoryview, where: str, base: int) -> Iterable[tuple[int, memoryview, int]]:
    """(opcode, body, offset) of each record in ``buf``; :class:`_CutError` at a cut record."""
    pos = 0
    while pos < len(buf):
        if pos + 9 > len(buf):
            raise _CutError(f"{where}: record header cut off at byte {base + pos}")
        op = buf[pos]
        (length,) = struct.unpack_from("<Q", buf, pos + 1)
        end = pos + 9 + length
        if end > len(buf):
            raise _CutError(
                f"{where}: record (opcode 0x{op:02x}) at byte {base + pos} is cut off "
                f"({len(buf) - pos - 9} of {length} bytes)"
            )
        yield op, buf[pos + 9 : end], base + pos
        pos = end


def _scan_mcap(p: Path) -> Bag:
    """Recover the messages of an MCAP file record by record, up to the first unusable one."""
    from rosbags.rosbag2.storage_mcap import decompress  # chunk compression, size and CRC check

    data = memoryview(p.read_bytes())
    schemas: dict[int, tuple[str, str]] = {}  # id -> (type name, definition)
    channels: dict[int, tuple[str, int]] = {}  # id -> (topic, schema id)
    found: list[tuple[int, int, bytes]] = []  # channel id, log time, data
    chunks = 0
    cut: str | None = None
    footer = False

    def record(op: int, body: memoryview) -> None:
        if op == _OP_SCHEMA:
            (sid,) = struct.unpack_from("<H", body, 0)
            name, pos = _string(body, 2)
            _encoding, pos = _string(body, pos)
            text, _ = _string(body, pos)
            schemas[sid] = (name, text)
        elif op == _OP_CHANNEL:
            cid, sid = struct.unpack_from("<HH", body, 0)
            topic, _ = _string(body, 4)
            channels[cid] = (topic, sid)
        elif op == _OP_MESSAGE:
            cid, _seq, log_time, _pub = struct.unpack_from("<HIQQ", body, 0)
            found.append((cid, log_time, bytes(body[22:])))

    try:
        for op, body, offset in _records(data[len(MCAP_MAGIC) :], "file", len(MCAP_MAGIC)):
            if op == _OP_FOOTER:
                footer = True
                break
            if op != _OP_CHUNK:
                record(op, body)
                continue
            try:
                _start, _end, size, crc = struct.unpack_from("<QQQI", body, 0)
                compression, pos = _string(body, 28)
                (csize,) = struct.unpack_from("<Q", body, pos)
                payload = bytes(body[pos + 8 : pos + 8 + csize])
                raw = memoryview(decompress(payload, compression, size, crc))
            except _CutError:
                raise
            except Exception as e:
                raise _CutError(f"damaged chunk at byte {offset}: {_reason(e)}") from None
            before = len(found)
            try:
                for iop, ibody, _ in _records(raw, f"chunk at byte {offset}", 0):
                    record(iop, ibody)
            except _CutError:
                del found[before:]  # a chunk is recovered whole or not at all
                raise
            chunks += 1
    except _CutError as e:
        cut = str(e)
    except struct.error as e:
        cut = f"damaged record: {e}"

    topics: dict[str, BagTopic] = {}
    messages: list[tuple[str, int, bytes]] = []
    for cid, t, payload in found:
        if cid not in channels:
            continue
        topic, sid = channels[cid]
        msgtype, msgdef = schemas.get(sid, ("", ""))
        info = topics.get(topic)
        topics[topic] = BagTopic(topic, msgtype, msgdef, (info.count if info else 0) + 1)
        messages.append((topic, t, payload))
    messages.sort(key=lambda m: m[1])
    size = len(data)
    if not messages:
        reason = cut or ("no footer and no message" if not footer else "no message")
        raise BagError(p, f"truncated: nothing readable ({reason}; {size} bytes)")
    notes = (
        []
        if footer
        else [
            f"no MCAP footer/summary: recovered {len(messages)} messages from {chunks} complete "
            f"chunks of a {size}-byte file" + (f"; stopped at: {cut}" if cut else "")
        ]
    )
    return Bag(p, topics, messages, recovered=not footer or cut is not None, notes=notes)
