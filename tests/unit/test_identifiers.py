"""Identifiers from outside: real-looking ids pass, traversal and encoded forms, NUL, newlines and huge values are
refused with a message naming the field."""

import pytest

from rtms.identifiers import KINDS, InvalidIdentifier, meeting_uuid_from_url, validate

VALID = {
    "rtms_stream_id": ["03db704592624398931a588dd78200cb", "s1", "f" * 64],
    "rtms_session_id": ["5b1c0e7a9d2f4c6b8a1e3d5f7a9c1e3b", "s1"],
    "meeting_uuid": ["4444AAAiAAAAAiAiAiiAii==", "m==", "/Ab+cD/eF//gH1jK2lM3nA==", "AbcD-ef_12345678901234=="],
    "zoom_user_id": ["30R7kT7bTIKSNUFEuH_Qlg", "host1", "u-1"],
    "account_id": ["EabCdeFGhIJklmnOpQRsTu", "acct-portal"],
    "client_id": ["demoNotetakerApp", "aBcD1234eFgH5678iJkL", "client-abc"],
    "participant_id": ["16778240", "0"],
}

# What an attacker puts where an id belongs.
HOSTILE = ["../x", "..", "/etc", "/etc/passwd", "a/../../b", "%2e%2e", "%2e%2e%2fx", "..%2f", "x\x00y", "\x00",
           "a\\b", "..\\x", "s1\n", "s 1", "", "a" * 10_240, "x.y", "C:\\Windows", "ok\u200b", "ｓ1"]


@pytest.mark.parametrize(("kind", "value"), [(k, v) for k, values in VALID.items() for v in values])
def test_real_looking_ids_pass(kind, value):
    assert validate(kind, value) == value


# A meeting UUID may start with '/' (Zoom's base64): it is compared and stored, never used as a path.
SLASHED_BASE64 = {"/etc", "/etc/passwd"}


@pytest.mark.parametrize(("kind", "value"), [(k, v) for k in sorted(KINDS) for v in HOSTILE
                                             if not (k == "meeting_uuid" and v in SLASHED_BASE64)])
def test_traversal_encoded_nul_and_huge_values_are_refused(kind, value):
    with pytest.raises(InvalidIdentifier) as refused:
        validate(kind, value, field=f"payload.{kind}")
    assert refused.value.field == f"payload.{kind}"
    assert str(refused.value).startswith(f"payload.{kind} is not a valid {kind.replace('_', ' ')}")


def test_message_quotes_only_the_start_of_a_huge_value():
    with pytest.raises(InvalidIdentifier) as refused:
        validate("rtms_stream_id", "a" * 10_240)
    assert "(10240 characters)" in str(refused.value)
    assert len(str(refused.value)) < 200


@pytest.mark.parametrize("value", [None, 123, ["s1"], {"id": "s1"}, b"s1"])
def test_non_strings_are_refused(value):
    with pytest.raises(InvalidIdentifier, match="rtms_stream_id is not a valid rtms stream id"):
        validate("rtms_stream_id", value)


def test_blank_only_where_allowed():
    assert validate("zoom_user_id", "", field="operator_id", allow_blank=True) == ""
    with pytest.raises(InvalidIdentifier, match="operator_id"):
        validate("zoom_user_id", "", field="operator_id")


def test_participant_id_is_digits_only():
    for value in ("16778240a", "-1", "1e5", "1" * 21):
        with pytest.raises(InvalidIdentifier):
            validate("participant_id", value)


def test_a_meeting_uuid_fits_every_column_that_holds_it():
    """consent.Meeting.uuid and AuditEntry.meeting_uuid hold 100 characters; a longer UUID was accepted and then
    failed its write (docs/SECURITY.md "Identifiers checked at the edge")."""
    for longest in ("A" * 100, "A" * 98 + "=="):
        assert validate("meeting_uuid", longest) == longest
    for too_long in ("A" * 101, "A" * 99 + "==", "A" * 126 + "=="):
        with pytest.raises(InvalidIdentifier, match="meeting_uuid"):
            validate("meeting_uuid", too_long)


def test_meeting_uuid_from_url_decodes_zooms_double_encoding_and_still_refuses_traversal():
    assert meeting_uuid_from_url("%252FAb%252B%252F%252FcD%253D%253D") == "/Ab+//cD=="
    assert meeting_uuid_from_url("4444AAAiAAAAAiAiAiiAii%3D%3D") == "4444AAAiAAAAAiAiAiiAii=="
    for hostile in ("%2e%2e%2fx", "%252e%252e", "%25252F"):
        with pytest.raises(InvalidIdentifier, match="meeting_uuid"):
            meeting_uuid_from_url(hostile)
