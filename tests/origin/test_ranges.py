import pytest

from origin.ranges import MalformedRange, RangeNotSatisfiable, content_range, parse_range


@pytest.mark.parametrize(
    "header,size,expected",
    [
        (None, 10, None),
        ("", 10, None),
        ("bytes=0-0", 10, (0, 0)),
        ("bytes=0-9", 10, (0, 9)),
        ("bytes=9-9", 10, (9, 9)),
        ("bytes=5-100", 10, (5, 9)),
        ("bytes=5-", 10, (5, 9)),
        ("bytes=-3", 10, (7, 9)),
        ("bytes=-30", 10, (0, 9)),
        ("BYTES = 1-2", 10, (1, 2)),
        ("items=0-1", 10, None),
        ("bytes=0-1,3-4", 10, None),
    ],
)
def test_parse_range(header, size, expected):
    assert parse_range(header, size) == expected


@pytest.mark.parametrize("header", ["bytes=10-", "bytes=10-20", "bytes=-0"])
def test_unsatisfiable(header):
    with pytest.raises(RangeNotSatisfiable) as exc:
        parse_range(header, 10)
    assert exc.value.size == 10


def test_suffix_of_empty_object_is_unsatisfiable():
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=-5", 0)


@pytest.mark.parametrize(
    "header", ["bytes", "bytes=", "bytes=-", "bytes=a-b", "bytes=5-2", "bytes=²-3", "bytes=1-2-3"]
)
def test_malformed(header):
    with pytest.raises(MalformedRange):
        parse_range(header, 10)


def test_content_range():
    assert content_range(0, 99, 1000) == "bytes 0-99/1000"
