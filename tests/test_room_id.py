import pytest

from bot.zim import InvalidRoomId, room_id_problem, validate_room_id


@pytest.mark.parametrize(
    "room_id",
    ["a", "room-1", "room#1+a&b", "!#$%&()+-:;<=.>?@[]^_{}|~", "x" * 32, "Z9"],
)
def test_documented_characters_are_accepted(room_id):
    assert validate_room_id(room_id) == room_id


@pytest.mark.parametrize(
    ("room_id", "fragment"),
    [
        ("", "empty"),
        ("x" * 33, "33 bytes"),
        ("has space", "a space"),
        ("tab\there", "the invisible character U+0009"),
        ("slash/no", "“/” (U+002F)"),
        ("quote'", "an apostrophe (U+0027)"),
        ('dq"', "a double quote (U+0022)"),
        ("back`tick", "a backtick (U+0060)"),
        ("é", "“é” (U+00E9)"),
        ("comma,", "“,” (U+002C)"),
        ("star*", "“*” (U+002A)"),
    ],
)
def test_invalid_room_ids_say_what_is_wrong(room_id, fragment):
    problem = room_id_problem(room_id)
    assert problem is not None
    assert fragment in problem
    with pytest.raises(InvalidRoomId, match="room ID"):
        validate_room_id(room_id)
