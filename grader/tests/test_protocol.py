"""The wire format and the plain-data rule: what may cross from student code."""

from __future__ import annotations

import math

import pytest

from grader.isolation.protocol import (
    BadValue,
    Call,
    FrameReader,
    Reply,
    StudentError,
    check_plain,
    encode_frame,
)


class RiggedFloat(float):
    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = float.__hash__


class Liar:
    def __eq__(self, other: object) -> bool:
        return True


@pytest.mark.parametrize(
    "value",
    [1, 1.5, True, None, "x", [1.0, [2, "a"]], (1.0, 2.0), {"a": [1.0, None]}, math.inf],
)
def test_plain_values_pass(value: object) -> None:
    check_plain(value)


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        (RiggedFloat(1.0), "subclass of float"),
        ([1.0, RiggedFloat(2.0)], "[1]"),
        ({"grads": (Liar(),)}, "Liar"),
        ({1: 2.0}, "non-string key"),
    ],
)
def test_non_plain_values_are_refused_with_a_reason(value: object, needle: str) -> None:
    with pytest.raises(BadValue) as info:
        check_plain(value, "Mul.backward's value")
    assert needle in str(info.value)
    assert "Mul.backward's value" in str(info.value)


def test_frames_round_trip_in_pieces() -> None:
    call = Call(7, "run", [{"reset": True, "ops": [[1, "root"]], "want": [1]}])
    data = encode_frame(call.to_json()) + encode_frame(Reply(7, True, [0.5]).to_json())
    reader = FrameReader()
    frames = []
    for i in range(0, len(data), 3):  # a pipe may deliver any split
        frames.extend(reader.feed(data[i : i + 3]))
    assert Call.from_json(frames[0]) == call
    assert Reply.from_json(frames[1]).value == [0.5]


def test_failed_reply_raises_the_student_fault() -> None:
    error = StudentError("ZeroDivisionError", "float division by zero", "  File x").to_json()
    reply = Reply.from_json(Reply(3, False, error=error).to_json())
    with pytest.raises(StudentError) as info:
        _ = reply.value
    assert info.value.type_name == "ZeroDivisionError"
    assert info.value.traceback == "  File x"


def test_reply_with_wrong_version_is_rejected() -> None:
    data = Reply(1, True, 1.0).to_json()
    data["v"] = 99
    with pytest.raises(ValueError):
        Reply.from_json(data)


def test_a_frame_of_millions_of_lists_is_refused_before_decoding() -> None:
    import tracemalloc

    from grader.isolation.protocol import MAX_FRAME, FrameReader, OversizedFrame

    body = b'{"type":"reply","v":1,"id":1,"ok":true,"value":[' + b"[]," * 1_000_000 + b"[]]}"
    assert len(body) < MAX_FRAME  # within the byte limit: only the item count can refuse it
    frame = len(body).to_bytes(4, "big") + body
    tracemalloc.start()
    try:
        with pytest.raises(OversizedFrame, match="items"):
            FrameReader().feed(frame)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * len(frame), peak  # the bytes and a copy, not a million lists
