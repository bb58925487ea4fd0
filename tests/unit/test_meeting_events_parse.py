"""zoomapp.webhooks.meeting_events.parse, property-based: whatever JSON a signed delivery carries in Zoom's nested
shape, the parser returns a typed event or raises MalformedMeetingEvent (never anything else), and what it
returns holds only well-formed ids."""

from hypothesis import given, settings
from hypothesis import strategies as st

from rtms.identifiers import KINDS
from zoomapp.webhooks import meeting_events

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
ids = st.sampled_from(["16778240", "30R7kT7bTIKSNUFEuH_Qlg", "4444AAAiAAAAAiAiAiiAii==", "", "../x", "a\x00b"])
maybe = ids | st.integers(min_value=-5, max_value=10**21) | json_values
roles = st.sampled_from(["host", "co-host", "attendee", "participant", ""]) | json_values
participants = st.fixed_dictionaries({}, optional={
    "user_id": maybe, "id": maybe, "participant_user_id": maybe, "user_name": st.text(max_size=20) | json_values,
    "email": st.text(max_size=20) | json_values, "old_role": roles, "new_role": roles,
})
meeting_objects = st.fixed_dictionaries({}, optional={
    "uuid": maybe, "id": maybe, "host_id": maybe, "topic": st.text(max_size=20) | json_values,
    "participant": participants | json_values,
})
payloads = st.fixed_dictionaries(
    {}, optional={"account_id": maybe, "object": meeting_objects | json_values}) | json_values


@settings(max_examples=1500, deadline=None)
@given(event=st.sampled_from(sorted(meeting_events.EVENTS)), payload=payloads)
def test_any_payload_is_typed_or_refused_by_name(event, payload):
    try:
        parsed = meeting_events.parse(event, payload)
    except meeting_events.MalformedMeetingEvent as exc:
        assert exc.error in ("malformed_event", "invalid_identifier") and "payload" in str(exc)
        return
    facts = parsed.meeting
    assert KINDS["meeting_uuid"].fullmatch(facts.uuid) and KINDS["zoom_user_id"].fullmatch(facts.host_id)
    assert KINDS["account_id"].fullmatch(facts.account_id) and (facts.meeting_id == "" or facts.meeting_id.isdigit())
    person = getattr(parsed, "participant", None)
    if person is not None:
        assert KINDS["participant_id"].fullmatch(person.participant_id)
        assert person.zoom_user_id == "" or KINDS["zoom_user_id"].fullmatch(person.zoom_user_id)
        assert isinstance(person.name, str) and "\x00" not in person.name


def test_zooms_example_is_read_with_its_ids_apart():
    """A participant_joined in Zoom's shape, with the values of a widely copied public example: a per-meeting
    user_id and the Zoom user id in id."""
    parsed = meeting_events.parse("meeting.participant_joined", {
        "account_id": "abc", "object": {
            "uuid": "uuid", "id": "156", "host_id": "abc", "topic": "My Meeting", "type": 2,
            "start_time": "2019-07-09T17:00:00Z", "duration": 60, "timezone": "America/Los_Angeles",
            "participant": {"user_id": "16778205", "user_name": "shree", "id": "iFxeBPYun6SAiWUzBcEkX",
                            "join_time": "2019-07-16T17:13:13Z"}}})
    assert parsed == meeting_events.ParticipantJoined(
        meeting_events.MeetingFacts(account_id="abc", uuid="uuid", meeting_id="156", host_id="abc",
                                    topic="My Meeting"),
        meeting_events.Person(participant_id="16778205", zoom_user_id="iFxeBPYun6SAiWUzBcEkX", name="shree",
                              email=""))
    assert not parsed.is_host
