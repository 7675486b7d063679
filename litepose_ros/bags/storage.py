"""rosbag2 files without ROS: read image messages, write result bags (sqlite3 and mcap).

The bottom floor of ``litepose_ros.bags``: no rclpy, no import from ``litepose_ros.ros``.

Built on the pure-Python ``rosbags`` package, so it works where ``ros2 bag`` does not exist. No
rclpy import here: messages stay raw CDR bytes (what a bag stores and what rclpy publishes
unchanged), and image messages are deserialised with rosbags' type store. The project's own
message types (``litepose_ros/msg/*``) are registered from their ``.msg`` text.

Every problem with a bag surfaces as a ``BagError`` that names the file and what is wrong: a
missing or unreadable bag, a topic that is not there (listing the topics that are), a damaged
bag. A truncated MCAP file (a recorder killed before it wrote the summary) is read up to its
last complete message, then reported.
"""

from __future__ import annotations

import shutil
import sqlite3
import struct
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE_TYPE = "sensor_msgs/msg/CompressedImage"
IMAGE_TYPES = (IMAGE_TYPE, COMPRESSED_IMAGE_TYPE)
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
PERSON_ARRAY_TYPE = "litepose_ros/msg/PersonArray"
MARKER_ARRAY_TYPE = "visualization_msgs/msg/MarkerArray"
STORAGE_PLUGINS = ("mcap", "sqlite3")
# rosbag2 metadata version written (rosbags writes 8 or 9; 9 is what Jazzy and newer write).
BAG_VERSION = 9
MCAP_MAGIC = b"\x89MCAP0\r\n"
_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # litepose_ros/


class BagError(Exception):
    """A bag cannot be read or written as asked; the message names the bag and the fix."""


@dataclass(frozen=True)
class TopicInfo:
    """One topic of a bag: its message type and how many messages it holds (-1: unknown)."""

    name: str
    msgtype: str
    count: int


@dataclass(frozen=True)
class BagMessage:
    """One message as stored: topic, type, bag receive time (ns) and the raw CDR bytes."""

    topic: str
    msgtype: str
    log_time_ns: int
    data: bytes


@dataclass(frozen=True)
class BagImage:
    """An image message of a bag, deserialised.

    index: position among the image messages of its topic (0-based); stamp_ns: header stamp in
    nanoseconds; message: the rosbags message object (fields as in sensor_msgs: ``header``,
    ``format`` / ``encoding``, ``data``, ...); raw: its CDR bytes.
    """

    index: int
    topic: str
    msgtype: str
    log_time_ns: int
    stamp_ns: int
    stamp_sec: int
    stamp_nanosec: int
    frame_id: str
    message: Any
    raw: bytes

    @property
    def compressed(self) -> bool:
        """True for sensor_msgs/CompressedImage."""
        return self.msgtype == COMPRESSED_IMAGE_TYPE


# --- types -------------------------------------------------------------------------------------


def message_definition_dir() -> Path:
    """The folder holding the project's ``.msg`` files (source tree or installed share/)."""
    import os
    import sys

    candidates = [_PACKAGE_DIR.parent / "msg"]
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    candidates += [Path(p) / "share" / "litepose_ros" / "msg" for p in [*prefixes, sys.prefix]]
    for candidate in candidates:
        if (candidate / "PersonArray.msg").is_file():
            return candidate
    raise BagError(
        "cannot find litepose_ros's message definitions (PersonArray.msg) in "
        f"{', '.join(str(c) for c in candidates)}: run from the source tree or install the "
        "package (make setup / colcon build)"
    )


def project_typestore():
    """A rosbags type store with ROS 2 (Kilted) standard types plus litepose_ros's messages."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    typestore = get_typestore(Stores.ROS2_KILTED)
    types: dict = {}
    for path in sorted(message_definition_dir().glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"litepose_ros/msg/{path.stem}"))
    typestore.register(types)
    return typestore


def _register_bag_types(typestore, connections: Iterable[Any]) -> None:
    """Register the types a bag defines itself (custom messages) that the store lacks."""
    from rosbags.interfaces import MessageDefinitionFormat
    from rosbags.typesys import get_types_from_msg

    for connection in connections:
        definition = connection.msgdef
        if connection.msgtype in typestore.fielddefs or definition.format != MessageDefinitionFormat.MSG:
            continue
        try:
            typestore.register(
                _types_from_bundled_msgdef(connection.msgtype, definition.data, get_types_from_msg)
            )
        except Exception:  # noqa: BLE001 - an unparsable foreign type only matters if it is read
            continue


def _types_from_bundled_msgdef(msgtype: str, text: str, parse) -> dict:
    """Types of a rosbag2 'ros2msg' definition: the main type, then '=== MSG: pkg/Type' blocks."""
    separator = "=" * 80 + "\n"
    types: dict = {}
    blocks = text.split(separator)
    types.update(parse(blocks[0], msgtype))
    for block in blocks[1:]:
        header, _, body = block.partition("\n")
        name = header.removeprefix("MSG: ").strip()
        if "/msg/" not in name:
            name = name.replace("/", "/msg/", 1)
        types.update(parse(body, name))
    return types


# --- reading -----------------------------------------------------------------------------------


class BagReader:
    """Read a rosbag2 bag: a bag directory (metadata.yaml), a ``.mcap`` or a ``.db3`` file.

    Use as a context manager. ``topics`` lists what the bag holds; ``messages()`` yields raw
    messages in time order; ``images(topic)`` yields deserialised image messages. Damage found
    while reading raises BagError after the messages read before it were yielded.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.truncated = False
        self._reader: Any = None
        self._salvage: _McapSalvage | _SqliteSalvage | None = None
        self._topics: dict[str, TopicInfo] = {}
        self.typestore = project_typestore()

    # context management
    def __enter__(self) -> BagReader:
        self.open()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def open(self) -> None:
        """Open the bag; raises BagError when it is missing or not a readable rosbag2."""
        from rosbags.rosbag2 import Reader
        from rosbags.rosbag2.errors import ReaderError

        if not self.path.exists():
            raise BagError(
                f"bag {self.path} does not exist: give the bag directory (with metadata.yaml), "
                "or its .mcap / .db3 file"
            )
        if self.path.is_dir() and not (self.path / "metadata.yaml").is_file():
            storage_files = sorted([*self.path.glob("*.mcap"), *self.path.glob("*.db3")])
            if len(storage_files) == 1:
                self.path = storage_files[0]  # a bag folder whose metadata.yaml was never written
            else:
                raise BagError(
                    f"{self.path} is a folder without metadata.yaml: give a rosbag2 bag "
                    "directory, or the .mcap / .db3 file inside it"
                )
        try:
            reader = Reader(self.path)
            reader.open()
        except (
            ReaderError,
            sqlite3.DatabaseError,
            struct.error,
            OSError,
            ValueError,
            KeyError,
            TypeError,
            IndexError,
            *_storage_errors(),
        ) as error:
            if self.path.suffix == ".mcap" and _looks_like_truncated_mcap(self.path):
                self._open_salvage()
                return
            database = _sqlite_file(self.path)
            if database is not None and _sqlite_salvageable(database):
                self._open_salvage(_SqliteSalvage(database))
                return
            raise BagError(
                f"cannot read bag {self.path}: {error} (is it a complete rosbag2 sqlite3 or mcap bag?)"
            ) from error
        self._reader = reader
        _register_bag_types(self.typestore, reader.connections)
        for name, info in reader.topics.items():
            self._topics[name] = TopicInfo(name, info.msgtype or "?", info.msgcount)

    def _open_salvage(self, salvage: _McapSalvage | _SqliteSalvage | None = None) -> None:
        self.truncated = True
        self._salvage = salvage or _McapSalvage(self.path)
        self._topics = self._salvage.scan_topics()
        if not self._topics:
            raise BagError(
                f"bag {self.path} is truncated before its first topic was written: nothing to read"
            )

    def close(self) -> None:
        """Close the bag (idempotent)."""
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self._salvage = None

    @property
    def topics(self) -> dict[str, TopicInfo]:
        """Topic name -> TopicInfo, sorted by name."""
        return dict(sorted(self._topics.items()))

    def describe_topics(self) -> str:
        """The bag's topics as 'name (type, N messages)' for error messages."""
        if not self._topics:
            return "the bag has no topics"
        return ", ".join(
            f"{t.name} ({t.msgtype}, {t.count if t.count >= 0 else '?'} messages)"
            for t in self.topics.values()
        )

    def require_topic(self, topic: str, msgtypes: Iterable[str] | None = None) -> TopicInfo:
        """The topic's info; BagError naming the existing topics when it is absent or of another type."""
        info = self._topics.get(topic)
        if info is None:
            raise BagError(f"topic {topic!r} is not in bag {self.path}; it has: {self.describe_topics()}")
        allowed = tuple(msgtypes) if msgtypes is not None else None
        if allowed and info.msgtype not in allowed:
            raise BagError(
                f"topic {topic!r} in bag {self.path} holds {info.msgtype}, expected one of "
                f"{', '.join(allowed)}; the bag has: {self.describe_topics()}"
            )
        return info

    def image_topics(self) -> list[str]:
        """Topics holding sensor_msgs/Image or sensor_msgs/CompressedImage."""
        return [t.name for t in self.topics.values() if t.msgtype in IMAGE_TYPES]

    def messages(self, topics: Iterable[str] | None = None) -> Iterator[BagMessage]:
        """Raw messages of the given topics (all when None) in bag time order.

        Raises BagError on damage (after yielding the messages before it), including the end of a
        truncated MCAP file.
        """
        wanted = set(self._topics) if topics is None else set(topics)
        for topic in wanted:
            self.require_topic(topic)
        count = 0
        if self._salvage is not None:
            for message in self._salvage.messages(wanted):
                count += 1
                yield message
            raise BagError(
                f"bag {self.path} is truncated ({self._salvage.what}); "
                f"read the {count} complete messages of the selected topics before the cut"
            )
        connections = [c for c in self._reader.connections if c.topic in wanted]
        if not connections:
            return
        try:
            for connection, timestamp, data in self._reader.messages(connections=connections):
                count += 1
                yield BagMessage(connection.topic, connection.msgtype, int(timestamp), bytes(data))
        except Exception as error:  # noqa: BLE001 - any storage failure here means damaged data
            reason = str(error)
            if "checksum mismatch" in reason.lower():
                reason = "an MCAP chunk fails its CRC check (its bytes were changed after writing)"
            raise BagError(
                f"bag {self.path} is damaged: reading stopped after {count} messages of the "
                f"selected topics: {reason}"
            ) from error

    def deserialize(self, message: BagMessage) -> Any:
        """The rosbags message object of a raw message (BagError when it does not decode)."""
        try:
            return self.typestore.deserialize_cdr(message.data, message.msgtype)
        except KeyError as error:
            raise BagError(
                f"bag {self.path}: unknown message type {message.msgtype} on {message.topic} "
                "(the bag does not carry its definition)"
            ) from error
        except Exception as error:
            raise BagError(
                f"bag {self.path}: a {message.msgtype} message on {message.topic} at t="
                f"{message.log_time_ns} ns does not deserialise (corrupt data): {error}"
            ) from error

    def images(self, topic: str) -> Iterator[BagImage]:
        """Deserialised Image / CompressedImage messages of a topic, in bag order."""
        self.require_topic(topic, IMAGE_TYPES)
        for index, message in enumerate(self.messages([topic])):
            decoded = self.deserialize(message)
            stamp = decoded.header.stamp
            yield BagImage(
                index=index,
                topic=topic,
                msgtype=message.msgtype,
                log_time_ns=message.log_time_ns,
                stamp_ns=int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec),
                stamp_sec=int(stamp.sec),
                stamp_nanosec=int(stamp.nanosec),
                frame_id=str(decoded.header.frame_id),
                message=decoded,
                raw=message.data,
            )


def _storage_errors() -> tuple[type[BaseException], ...]:
    """Errors of rosbags' storage back ends (its sqlite3 storage uses apsw)."""
    try:
        import apsw
    except ImportError:
        return ()
    return (apsw.Error,)


def _sqlite_file(path: Path) -> Path | None:
    """The .db3 file of a bag given as a directory or a file, or None."""
    if path.is_dir():
        files = sorted(path.glob("*.db3"))
        return files[0] if len(files) == 1 else None
    return path if path.suffix == ".db3" else None


def _sqlite_salvageable(path: Path) -> bool:
    """An sqlite3 file whose header is intact but whose size is not what the header says (cut
    short), or not a whole number of pages."""
    try:
        with path.open("rb") as handle:
            header = handle.read(100)
        size = path.stat().st_size
    except OSError:
        return False
    if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
        return False
    page_size = struct.unpack_from(">H", header, 16)[0]
    page_size = 65536 if page_size == 1 else page_size
    (pages,) = struct.unpack_from(">I", header, 28)
    return size % page_size != 0 or size < pages * page_size


def _looks_like_truncated_mcap(path: Path) -> bool:
    """An MCAP file that starts right (or with part of the magic) but lacks its footer: a
    recording cut off, possibly right after opening (8 bytes: the magic alone)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(8)
            size = path.stat().st_size
            handle.seek(max(0, size - 8))
            tail = handle.read(8)
    except OSError:
        return False
    if not head or not MCAP_MAGIC.startswith(head):
        return False
    # Magic, at least a header record (9 bytes), a footer record and the magic again.
    return tail != MCAP_MAGIC or size < 2 * len(MCAP_MAGIC) + 9 + 29


def add_mcap_chunk_crcs(path: Path) -> None:
    """Store the CRC-32 of each chunk's records in its header, in place, where the writer left 0
    ('not computed'; rosbags does not compute them): readers then detect damaged chunks."""
    from rosbags.rosbag2.storage_mcap import DECOMPRESSORS

    with path.open("r+b") as handle:
        position = len(MCAP_MAGIC)
        handle.seek(position)
        while True:
            head = handle.read(9)
            if len(head) < 9:
                return
            opcode, length = struct.unpack("<BQ", head)
            body_start = position + 9
            if opcode == 0x02:  # footer
                return
            if opcode == 0x06:
                body = handle.read(length)
                _start, _end, size, crc = struct.unpack_from("<QQQI", body, 0)
                (name_length,) = struct.unpack_from("<I", body, 28)
                compression = body[32 : 32 + name_length].decode()
                offset = 32 + name_length
                (data_length,) = struct.unpack_from("<Q", body, offset)
                payload = body[offset + 8 : offset + 8 + data_length]
                if crc == 0 and compression in DECOMPRESSORS:
                    records = DECOMPRESSORS[compression](payload, size)
                    handle.seek(body_start + 24)
                    handle.write(struct.pack("<I", zlib.crc32(records)))
            position = body_start + length
            handle.seek(position)


class _McapSalvage:
    """Reads the complete records of an MCAP file that lacks its summary and footer.

    MCAP records are ``opcode u8, length u64, body``; a recording cut off ends mid-record. Schema
    (0x03), channel (0x04), message (0x05) and chunk (0x06) records are read up to the last
    complete one.
    """

    what = "no MCAP footer: the recording was cut off"

    def __init__(self, path: Path):
        self.path = path
        self.channels: dict[int, tuple[str, str]] = {}  # channel id -> (topic, msgtype)

    def _records(self) -> Iterator[tuple[int, bytes]]:
        with self.path.open("rb") as handle:
            handle.read(len(MCAP_MAGIC))
            while True:
                head = handle.read(9)
                if len(head) < 9:
                    return
                opcode, length = struct.unpack("<BQ", head)
                body = handle.read(length)
                complete = len(body) == length
                if opcode == 0x06:
                    yield from self._chunk_records(body, complete)
                elif complete:
                    yield opcode, body
                if not complete:
                    return

    @staticmethod
    def _chunk_records(body: bytes, complete: bool) -> Iterator[tuple[int, bytes]]:
        """Records of a chunk; of a cut-off chunk, those complete before the cut (uncompressed only)."""
        from rosbags.rosbag2.storage_mcap import decompress

        if len(body) < 32:
            return
        _start, _end, uncompressed_size, crc = struct.unpack_from("<QQQI", body, 0)
        (name_length,) = struct.unpack_from("<I", body, 28)
        compression = body[32 : 32 + name_length].decode()
        offset = 32 + name_length
        if len(body) < offset + 8:
            return
        (data_length,) = struct.unpack_from("<Q", body, offset)
        payload = body[offset + 8 : offset + 8 + data_length]
        if complete:
            data = decompress(payload, compression, uncompressed_size, crc)
        elif compression == "":
            data = payload  # a compressed chunk cut off cannot be decoded at all
        else:
            return
        position = 0
        while position + 9 <= len(data):
            opcode, length = struct.unpack_from("<BQ", data, position)
            if position + 9 + length > len(data):
                return
            yield opcode, data[position + 9 : position + 9 + length]
            position += 9 + length

    def _note_record(self, opcode: int, body: bytes, schemas: dict[int, str]) -> None:
        if opcode == 0x03:
            schema_id, name_length = struct.unpack_from("<HI", body, 0)
            schemas[schema_id] = body[6 : 6 + name_length].decode()
        elif opcode == 0x04:
            channel_id, schema_id, topic_length = struct.unpack_from("<HHI", body, 0)
            topic = body[8 : 8 + topic_length].decode()
            self.channels[channel_id] = (topic, schemas.get(schema_id, "?"))

    def scan_topics(self) -> dict[str, TopicInfo]:
        schemas: dict[int, str] = {}
        counts: dict[int, int] = {}
        try:
            for opcode, body in self._records():
                self._note_record(opcode, body, schemas)
                if opcode == 0x05:
                    (channel_id,) = struct.unpack_from("<H", body, 0)
                    counts[channel_id] = counts.get(channel_id, 0) + 1
        except (struct.error, ValueError, UnicodeDecodeError, Exception):  # noqa: BLE001 - damage ends the scan
            pass
        return {
            topic: TopicInfo(topic, msgtype, counts.get(cid, 0))
            for cid, (topic, msgtype) in self.channels.items()
        }

    def messages(self, topics: set[str]) -> Iterator[BagMessage]:
        schemas: dict[int, str] = {}
        records = self._records()
        while True:
            try:
                opcode, body = next(records)
            except StopIteration:
                return
            except Exception:  # noqa: BLE001 - a damaged chunk ends what can be salvaged
                return
            self._note_record(opcode, body, schemas)
            if opcode != 0x05:
                continue
            channel_id, _sequence, log_time, _publish_time = struct.unpack_from("<HIQQ", body, 0)
            topic, msgtype = self.channels.get(channel_id, ("", ""))
            if topic in topics:
                yield BagMessage(topic, msgtype, int(log_time), bytes(body[22:]))


SQLITE_MAGIC = b"SQLite format 3\x00"


class _SqliteSalvage:
    """Reads the intact rows of a rosbag2 sqlite3 file cut short (sqlite itself refuses it as
    'malformed'), page by page: every complete table-leaf page is decoded (overflow chains that
    end beyond the cut are dropped), rows shaped like rosbag2's ``topics`` and ``messages`` rows
    are kept. A recording is append-only, so what survives is what was written before the cut.
    """

    what = "sqlite3 database cut short: its last pages are missing"

    def __init__(self, path: Path):
        self.path = path
        self.data = path.read_bytes()
        if len(self.data) < 100 or not self.data.startswith(SQLITE_MAGIC):
            raise BagError(f"bag {path} is not a sqlite3 database (or is cut before its header)")
        page_size = struct.unpack_from(">H", self.data, 16)[0]
        self.page_size = 65536 if page_size == 1 else page_size
        self.usable = self.page_size - self.data[20]
        self.pages = len(self.data) // self.page_size
        self.topic_rows: dict[int, tuple[str, str]] = {}  # topic id -> (name, type)
        self.message_rows: list[tuple[int, int, int, bytes]] = []  # (timestamp, rowid, topic id, data)
        self._scan()

    def _page(self, number: int) -> int:
        return (number - 1) * self.page_size

    def _scan(self) -> None:
        for number in range(1, self.pages + 1):
            base = self._page(number)
            header = base + (100 if number == 1 else 0)
            if self.data[header] != 0x0D:  # table b-tree leaf pages hold the rows
                continue
            cells = struct.unpack_from(">H", self.data, header + 3)[0]
            for index in range(cells):
                try:
                    pointer = struct.unpack_from(">H", self.data, header + 8 + 2 * index)[0]
                    row = self._cell(base + pointer)
                except (IndexError, struct.error, ValueError, UnicodeDecodeError):
                    continue  # a damaged cell: skip it
                if row is not None:
                    self._keep(*row)

    def _varint(self, position: int) -> tuple[int, int]:
        value = 0
        for step in range(9):
            byte = self.data[position + step]
            if step == 8:
                return (value << 8) | byte, position + 9
            value = (value << 7) | (byte & 0x7F)
            if byte < 0x80:
                return value, position + step + 1
        raise ValueError("bad varint")  # pragma: no cover

    def _cell(self, position: int) -> tuple[int, list] | None:
        size, position = self._varint(position)
        rowid, position = self._varint(position)
        usable = self.usable
        most = usable - 35
        if size <= most:
            payload = self.data[position : position + size]
        else:
            least = (usable - 12) * 32 // 255 - 23
            local = least + (size - least) % (usable - 4)
            local = local if local <= most else least
            parts = [self.data[position : position + local]]
            remaining = size - local
            (page,) = struct.unpack_from(">I", self.data, position + local)
            while remaining > 0:
                if page < 1 or page > self.pages:
                    return None  # the overflow chain runs past the cut: the row is incomplete
                base = self._page(page)
                (page,) = struct.unpack_from(">I", self.data, base)
                take = min(remaining, usable - 4)
                parts.append(self.data[base + 4 : base + 4 + take])
                remaining -= take
            payload = b"".join(parts)
        if len(payload) != size:
            return None
        return rowid, _sqlite_record(payload)

    def _keep(self, rowid: int, values: list) -> None:
        shapes = [type(v) for v in values]
        if len(values) == 4 and shapes[1:] == [int, int, bytes] and values[0] in (None, rowid):
            self.message_rows.append((values[2], rowid, values[1], values[3]))
        elif (
            len(values) >= 5 and shapes[1:3] == [str, str] and values[1].startswith("/") and "/" in values[2]
        ):
            self.topic_rows[rowid] = (values[1], values[2])

    def scan_topics(self) -> dict[str, TopicInfo]:
        counts: dict[int, int] = {}
        for _time, _rowid, topic_id, _data in self.message_rows:
            counts[topic_id] = counts.get(topic_id, 0) + 1
        return {
            name: TopicInfo(name, msgtype, counts.get(topic_id, 0))
            for topic_id, (name, msgtype) in self.topic_rows.items()
        }

    def messages(self, topics: set[str]) -> Iterator[BagMessage]:
        for timestamp, _rowid, topic_id, data in sorted(self.message_rows, key=lambda row: row[:2]):
            topic, msgtype = self.topic_rows.get(topic_id, ("", ""))
            if topic in topics:
                yield BagMessage(topic, msgtype, int(timestamp), bytes(data))


def _sqlite_record(payload: bytes) -> list:
    """The values of an sqlite record (https://www.sqlite.org/fileformat.html#record_format)."""
    header_size, position = _record_varint(payload, 0)
    types = []
    while position < header_size:
        serial, position = _record_varint(payload, position)
        types.append(serial)
    values: list = []
    position = header_size
    widths = {1: 1, 2: 2, 3: 3, 4: 4, 5: 6, 6: 8}
    for serial in types:
        if serial == 0:
            values.append(None)
        elif serial in widths:
            width = widths[serial]
            values.append(int.from_bytes(payload[position : position + width], "big", signed=True))
            position += width
        elif serial == 7:
            values.append(struct.unpack_from(">d", payload, position)[0])
            position += 8
        elif serial in (8, 9):
            values.append(serial - 8)
        elif serial >= 12:
            length = (serial - 12) // 2
            raw = payload[position : position + length]
            if len(raw) != length:
                raise ValueError("record cut short")
            values.append(raw.decode() if serial % 2 else bytes(raw))
            position += length
        else:
            raise ValueError(f"reserved serial type {serial}")
    return values


def _record_varint(data: bytes, position: int) -> tuple[int, int]:
    value = 0
    for step in range(9):
        byte = data[position + step]
        if step == 8:
            return (value << 8) | byte, position + 9
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, position + step + 1
    raise ValueError("bad varint")  # pragma: no cover


# --- writing -----------------------------------------------------------------------------------


class BagWriter:
    """Write a rosbag2 bag directory (metadata.yaml + one .mcap or .db3 file) from raw CDR.

    Use as a context manager: the bag is closed (summary and metadata written) also when an
    error interrupts the work, so what was written stays readable. ``add_topic`` registers a
    topic with its type; ``write`` appends one serialised message. compress: zstd compression.
    """

    def __init__(
        self,
        path: str | Path,
        storage: str = "mcap",
        *,
        overwrite: bool = False,
        compress: bool = False,
        typestore=None,
    ):
        if storage not in STORAGE_PLUGINS:
            raise BagError(f"unknown bag storage {storage!r}: use one of {', '.join(STORAGE_PLUGINS)}")
        self.path = Path(path)
        self.storage = storage
        self.overwrite = overwrite
        self.compress = compress
        self.typestore = typestore if typestore is not None else project_typestore()
        self.counts: dict[str, int] = {}
        self._writer: Any = None
        self._connections: dict[str, Any] = {}

    def __enter__(self) -> BagWriter:
        self.open()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def open(self) -> None:
        """Create the bag directory; BagError when it exists (unless overwrite) or is not writable."""
        from rosbags.rosbag2 import StoragePlugin, Writer

        if self.path.exists():
            if not self.overwrite:
                raise BagError(
                    f"output bag {self.path} already exists: choose another path or allow "
                    "overwriting (--overwrite)"
                )
            if self.path.is_dir():
                shutil.rmtree(self.path)
            else:
                self.path.unlink()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        plugin = StoragePlugin.MCAP if self.storage == "mcap" else StoragePlugin.SQLITE3
        try:
            self._writer = Writer(self.path, version=BAG_VERSION, storage_plugin=plugin)
            if self.compress:
                from rosbags.rosbag2 import CompressionFormat, CompressionMode

                # mcap: zstd-compressed chunks inside the file (what ros2 bag record writes with
                # --compression-mode storage); sqlite3: each message compressed.
                mode = CompressionMode.STORAGE if self.storage == "mcap" else CompressionMode.MESSAGE
                self._writer.set_compression(mode, CompressionFormat.ZSTD)
            self._writer.open()
        except Exception as error:
            raise BagError(f"cannot create output bag {self.path}: {error}") from error

    def add_topic(self, topic: str, msgtype: str) -> None:
        """Register a topic of a type known to the type store (standard ROS 2 or litepose_ros)."""
        if topic in self._connections:
            return
        if msgtype not in self.typestore.fielddefs:
            raise BagError(
                f"cannot write {msgtype} to {self.path}: the type is not known "
                "(standard ROS 2 types and litepose_ros/msg/* are)"
            )
        self._connections[topic] = self._writer.add_connection(topic, msgtype, typestore=self.typestore)
        self.counts[topic] = 0

    def write(self, topic: str, timestamp_ns: int, data: bytes) -> None:
        """Append one serialised (CDR) message of a registered topic, at bag time timestamp_ns."""
        if topic not in self._connections:
            raise BagError(f"topic {topic!r} was not added to output bag {self.path} (add_topic first)")
        self._writer.write(self._connections[topic], int(timestamp_ns), data)
        self.counts[topic] += 1

    def close(self) -> None:
        """Finish the bag (idempotent)."""
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()
            if self.storage == "mcap":
                add_mcap_chunk_crcs(self.storage_file())

    def storage_file(self) -> Path:
        """The .mcap / .db3 file inside the bag directory."""
        suffix = ".mcap" if self.storage == "mcap" else ".db3"
        files = sorted(self.path.glob(f"*{suffix}"))
        if not files:
            raise BagError(f"bag {self.path} holds no {suffix} file")
        return files[0]


def decode_bag_image(image: BagImage) -> np.ndarray:
    """The BGR pixels of a bag image message (ImageFormatError, a ValueError, names what is
    wrong)."""
    from litepose_ros.image_encodings import compressed_image_to_array, raw_image_to_array

    message = image.message
    if image.compressed:
        pixels, _ = compressed_image_to_array(bytes(message.data), message.format, color_order="bgr")
    else:
        pixels, _ = raw_image_to_array(
            message.data,
            message.encoding,
            message.height,
            message.width,
            message.step,
            is_bigendian=bool(message.is_bigendian),
            color_order="bgr",
        )
    return pixels


def sibling_camera_info_topic(image_topic: str) -> str:
    """The CameraInfo topic beside an image topic, as camera drivers name it: ``/cam/image_raw``
    (or its ``/compressed`` stream) -> ``/cam/camera_info``."""
    return image_topic.removesuffix("/compressed").rstrip("/").rsplit("/", 1)[0] + "/camera_info"


def write_single_mcap(
    path: str | Path,
    topics: dict[str, str],
    messages: Iterable[tuple[str, int, bytes]],
    *,
    overwrite: bool = False,
) -> Path:
    """Write a self-contained ``.mcap`` file (no bag directory): topics name -> type,
    messages (topic, time ns, CDR bytes). MCAP files carry their schemas, so rosbags, the mcap
    tools and ``ros2 bag play`` read them alone."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise BagError(f"{path} already exists: choose another path or allow overwriting")
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        with BagWriter(Path(tmp) / "bag", "mcap") as writer:
            for topic, msgtype in topics.items():
                writer.add_topic(topic, msgtype)
            for topic, timestamp, data in messages:
                writer.write(topic, timestamp, data)
        storage_file = writer.storage_file()
        shutil.move(str(storage_file), str(path))
    return path


def serialize_rosbags(typestore, message: Any, msgtype: str) -> bytes:
    """CDR bytes of a rosbags message object (used to build bags without rclpy)."""
    return bytes(typestore.serialize_cdr(message, msgtype))


def stamp_ns(sec: int, nanosec: int) -> int:
    """A ROS time (sec, nanosec) as integer nanoseconds."""
    return int(sec) * 1_000_000_000 + int(nanosec)


# --- building messages without ROS (sample bags, tests, tools) ---------------------------------


def _header(typestore, stamp: int, frame_id: str):
    types = typestore.types
    time = types["builtin_interfaces/msg/Time"](sec=stamp // 1_000_000_000, nanosec=stamp % 1_000_000_000)
    return types["std_msgs/msg/Header"](stamp=time, frame_id=frame_id)


def compressed_image_cdr(
    typestore, encoded: bytes, stamp: int, frame_id: str, image_format: str = "jpeg"
) -> bytes:
    """CDR of a sensor_msgs/CompressedImage holding already encoded bytes (JPEG / PNG)."""
    import numpy as np

    message = typestore.types[COMPRESSED_IMAGE_TYPE](
        header=_header(typestore, stamp, frame_id),
        format=image_format,
        data=np.frombuffer(encoded, dtype=np.uint8),
    )
    return serialize_rosbags(typestore, message, COMPRESSED_IMAGE_TYPE)


def raw_image_cdr(typestore, image, stamp: int, frame_id: str, encoding: str = "bgr8") -> bytes:
    """CDR of a sensor_msgs/Image from a uint8 array (H, W) or (H, W, C), row-major, no padding."""
    import numpy as np

    array = np.ascontiguousarray(image)
    if array.dtype != np.uint8 or array.ndim not in (2, 3):
        raise ValueError(
            f"raw_image_cdr needs a uint8 (H, W) or (H, W, C) array, got {array.dtype} {array.shape}"
        )
    height, width = array.shape[:2]
    channels = 1 if array.ndim == 2 else array.shape[2]
    message = typestore.types[IMAGE_TYPE](
        header=_header(typestore, stamp, frame_id),
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=0,
        step=width * channels,
        data=array.reshape(-1),
    )
    return serialize_rosbags(typestore, message, IMAGE_TYPE)


def camera_info_cdr(
    typestore,
    width: int,
    height: int,
    *,
    fx: float,
    fy: float,
    cx: float,
    cy: float,
    stamp: int,
    frame_id: str,
) -> bytes:
    """CDR of a sensor_msgs/CameraInfo of an undistorted pinhole camera (plumb_bob, zero distortion)."""
    import numpy as np

    types = typestore.types
    roi = types["sensor_msgs/msg/RegionOfInterest"](
        x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
    )
    message = types[CAMERA_INFO_TYPE](
        header=_header(typestore, stamp, frame_id),
        height=height,
        width=width,
        distortion_model="plumb_bob",
        d=np.zeros(5),
        k=np.array([fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]),
        r=np.eye(3).reshape(-1),
        p=np.array([fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]),
        binning_x=0,
        binning_y=0,
        roi=roi,
    )
    return serialize_rosbags(typestore, message, CAMERA_INFO_TYPE)
