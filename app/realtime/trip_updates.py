"""The worker's TripUpdates, encoded straight from a cycle's arrays into protobuf wire format.

Building ~100,000 ``StopTimeUpdate`` messages field by field through the protobuf API cost the worker more than
its whole board work; here every stop time update of the cycle is laid out at once with numpy (varints and
stop ids scattered into one byte buffer), and only the ~5,000 entities (trip descriptor, vehicle, timestamp)
are assembled in Python. The rules are those of ``gtfs_rt.trip_update_entities`` (a test decodes both and
compares them): ids the static feed knows; one entity per (trip, start date) with its start date; one update
per stop_sequence, sorted, times strictly increasing (a tie nudged a second later), departure = arrival, the
interval's width as uncertainty, ``schedule_relationship`` SCHEDULED written out.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from google.transit import gtfs_realtime_pb2 as rt

from app.realtime.catalog import StaticCatalog
from prediction.network import Network

__all__ = ["TripUpdateEncoder", "varint"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ByteArray = npt.NDArray[np.uint8]


def varint(value: int) -> bytes:
    """A non-negative integer as a protobuf varint."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _varints(values: IntArray) -> tuple[ByteArray, IntArray]:
    """Non-negative integers as varints: an (n, 10) byte matrix and each one's length."""
    rest = np.asarray(values, dtype=np.int64).astype(np.uint64)
    out = np.zeros((len(rest), 10), dtype=np.uint8)
    lengths = np.ones(len(rest), dtype=np.int64)
    for k in range(10):
        low = (rest & np.uint64(0x7F)).astype(np.uint8)
        rest = rest >> np.uint64(7)
        more = rest > 0
        out[:, k] = low | (more.astype(np.uint8) << 7)
        if not more.any():
            break
        lengths += more
    return out, lengths


class _Layout:
    """Per-row byte pieces, concatenated row by row into one buffer."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.pieces: list[tuple[ByteArray, IntArray, IntArray]] = []  # (source bytes, start per row, length)

    def constant(self, data: bytes) -> None:
        self.pieces.append((np.frombuffer(data, dtype=np.uint8), np.zeros(self.rows, dtype=np.int64),
                            np.full(self.rows, len(data), dtype=np.int64)))

    def varint(self, values: IntArray) -> IntArray:
        matrix, lengths = _varints(values)
        self.pieces.append((matrix.reshape(-1), np.arange(self.rows, dtype=np.int64) * 10, lengths))
        return lengths

    def table(self, data: ByteArray, starts: IntArray, lengths: IntArray, index: IntArray) -> None:
        """Row i gets entry ``index[i]`` of a table of byte strings laid end to end."""
        self.pieces.append((data, starts[index], lengths[index]))

    def lengths(self) -> IntArray:
        return np.sum([length for _, _, length in self.pieces], axis=0).astype(np.int64) if self.pieces \
            else np.zeros(self.rows, dtype=np.int64)

    def build(self) -> tuple[ByteArray, IntArray]:
        """The buffer and where each row starts in it (rows are back to back)."""
        sizes = self.lengths()
        starts = np.cumsum(sizes) - sizes
        out = np.zeros(int(sizes.sum()), dtype=np.uint8)
        cursor = starts.copy()
        for source, begin, length in self.pieces:
            total = int(length.sum())
            within = np.arange(total) - np.repeat(np.cumsum(length) - length, length)
            out[np.repeat(cursor, length) + within] = source[np.repeat(begin, length) + within]
            cursor += length
        return out, starts


class TripUpdateEncoder:
    """One per worker: the feed's stop ids as wire bytes, trip ids by sort rank, trip descriptors by run."""

    def __init__(self, catalog: StaticCatalog, net: Network) -> None:
        self.catalog = catalog
        self.trip_ids: list[str] = net.trip_ids.tolist()
        self.trip_known = np.array([t in catalog.trips for t in self.trip_ids], dtype=bool)
        self.stop_known = np.array([s in catalog.stops for s in net.stop_ids.tolist()], dtype=bool)
        self.trip_rank = np.argsort(np.argsort(net.trip_ids.astype(str), kind="stable"), kind="stable")
        self.visit_stop, self.visit_seq = net.visit_stop, net.visit_seq
        fields = [b"\x22" + varint(len(raw)) + raw for raw in (s.encode() for s in net.stop_ids.tolist())]
        self.stop_lengths = np.array([len(f) for f in fields], dtype=np.int64)
        self.stop_starts = np.cumsum(self.stop_lengths) - self.stop_lengths
        self.stop_bytes = np.frombuffer(b"".join(fields), dtype=np.uint8)
        self._descriptors: dict[tuple[int, str], tuple[bytes, bytes]] = {}

    def _descriptor(self, trip: int, day: str) -> tuple[bytes, bytes]:
        """The entity's id and trip descriptor fields (serialized), cached per run."""
        found = self._descriptors.get((trip, day))
        if found is None:
            if len(self._descriptors) > 50_000:
                self._descriptors.clear()
            trip_id = self.trip_ids[trip]
            info = self.catalog.trips[trip_id]
            descriptor = rt.TripDescriptor(trip_id=trip_id, route_id=info.route_id, start_date=day,
                                           schedule_relationship=rt.TripDescriptor.SCHEDULED)
            if info.direction_id is not None:
                descriptor.direction_id = info.direction_id
            entity_id = f"{trip_id}:{day}".encode()
            packed = descriptor.SerializeToString()
            found = self._descriptors[(trip, day)] = (b"\x0a" + varint(len(entity_id)) + entity_id,
                                                      b"\x0a" + varint(len(packed)) + packed)
        return found

    def known(self, trips: IntArray, visits: IntArray) -> npt.NDArray[np.bool_]:
        """Rows whose trip and stop the static feed knows (the others are left out)."""
        known: npt.NDArray[np.bool_] = self.trip_known[trips] & self.stop_known[self.visit_stop[visits]]
        return known

    def encode(self, trips: IntArray, start_dates: npt.NDArray[np.object_], visits: IntArray, predicted: FloatArray,
               lower: FloatArray | None, upper: FloatArray | None, vehicle_ids: npt.NDArray[np.object_],
               observed: FloatArray) -> bytes:
        """The entities of a header-less ``FeedMessage`` (prepend a serialized header to get a full snapshot)."""
        keep = np.flatnonzero(self.known(trips, visits))
        if not len(keep):
            return b""
        days, day_code = np.unique(start_dates[keep].astype(str), return_inverse=True)
        day_code = day_code.reshape(-1)
        seq = self.visit_seq[visits[keep]]
        order = keep[np.lexsort((seq, day_code, self.trip_rank[trips[keep]]))]
        code = np.empty(len(trips), dtype=np.int64)
        code[keep] = day_code
        seq = self.visit_seq[visits[order]]
        run = self.trip_rank[trips[order]] * len(days) + code[order]
        new_run = np.r_[True, run[1:] != run[:-1]]
        order = order[new_run | np.r_[True, seq[1:] != seq[:-1]]]  # one update per stop_sequence: the first
        seq, run = self.visit_seq[visits[order]], self.trip_rank[trips[order]] * len(days) + code[order]
        first = np.flatnonzero(np.r_[True, run[1:] != run[:-1]])
        group = np.cumsum(np.r_[True, run[1:] != run[:-1]]) - 1
        # a later stop is reached strictly after an earlier one (E022: equal times are an error): each time is
        # at least a second after the previous stop's, as ``gtfs_rt._increasing`` says why. With k the row's
        # place in its trip, time_k = max over j <= k of (stamp_j + k - j): a running maximum of stamp - k.
        stamp = np.trunc(predicted[order]).astype(np.int64)
        place = np.arange(len(order), dtype=np.int64) - first[group]
        shifted = stamp - place
        span = int(shifted.max()) - min(int(shifted.min()), 0) + 1
        time = np.maximum.accumulate(group * span + shifted) - group * span + place
        buffer, starts = self._stop_time_updates(order, seq, time, lower, upper, visits)
        bounds = np.r_[starts[first], len(buffer)].tolist()
        blob = buffer.tobytes()
        parts: list[bytes] = []
        for g, i in enumerate(order[first].tolist()):
            entity_id, descriptor = self._descriptor(int(trips[i]), str(days[code[i]]))
            vehicle = vehicle_ids[i]
            update = [descriptor, blob[bounds[g]:bounds[g + 1]]]
            if vehicle:
                raw = str(vehicle).encode()
                inner = b"\x0a" + varint(len(raw)) + raw
                update.append(b"\x1a" + varint(len(inner)) + inner)
            update.append(b"\x20" + varint(int(observed[i])))
            packed = b"".join(update)
            entity = entity_id + b"\x1a" + varint(len(packed)) + packed
            parts.append(b"\x12" + varint(len(entity)) + entity)
        return b"".join(parts)

    def _stop_time_updates(self, order: IntArray, seq: IntArray, time: IntArray, lower: FloatArray | None,
                           upper: FloatArray | None, visits: IntArray) -> tuple[ByteArray, IntArray]:
        """Each kept row's ``stop_time_update`` field (tag, length, message), back to back in row order."""
        n = len(order)
        event = _Layout(n)  # StopTimeEvent: time, uncertainty
        event.constant(b"\x10")
        event.varint(time)
        if lower is not None and upper is not None:
            event.constant(b"\x18")
            event.varint(np.maximum(0, np.trunc(upper[order] - lower[order])).astype(np.int64))
        event_size = event.lengths()
        event_bytes, event_starts = event.build()
        stu = _Layout(n)
        stu.constant(b"\x08")
        stu.varint(seq)
        for tag in (b"\x12", b"\x1a"):  # arrival, then departure: the same event
            stu.constant(tag)
            stu.varint(event_size)
            stu.table(event_bytes, event_starts, event_size, np.arange(n))
        stu.table(self.stop_bytes, self.stop_starts, self.stop_lengths, self.visit_stop[visits[order]])
        stu.constant(b"\x28\x00")  # schedule_relationship SCHEDULED, written out: W009 asks for its presence
        size = stu.lengths()
        stu_bytes, stu_starts = stu.build()
        field = _Layout(n)
        field.constant(b"\x12")
        field.varint(size)
        field.table(stu_bytes, stu_starts, size, np.arange(n))
        return field.build()
