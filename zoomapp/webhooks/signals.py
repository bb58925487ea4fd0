"""`zoom_event`: every verified Zoom webhook event, announced once per delivery (duplicates are not announced).

    zoom_event.send_robust(sender=<ZoomApp instance>, app=<the same ZoomApp>, event="meeting.participant_joined",
                           payload={...}, delivery=<WebhookDelivery>, meeting_event=<typed event or None>)

`sender` (and `app`) is the ZoomApp instance the event was addressed to (connect without `sender=`).
`meeting_event` is the parsed meeting event (zoomapp.webhooks.meeting_events: MeetingStarted, MeetingEnded,
ParticipantJoined, ParticipantLeft, ParticipantRoleChanged) for those events and None for the others; read
meeting events only through it. `payload` is the event's payload: whole for meeting events, unwrapped from
`payload.object` for the others when Zoom nests them.
Sent after the delivery's transaction committed, inside the web request: receivers must be quick (enqueue
slow work) and must not raise (`send_robust`: exceptions are logged, the delivery is still acknowledged).
`endpoint.url_validation` is not announced.
"""

import django.dispatch

zoom_event = django.dispatch.Signal()
