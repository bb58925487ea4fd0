"""`zoom_event`: every verified Zoom webhook event, announced once per delivery (duplicates are not announced).

    zoom_event.send_robust(sender=<ZoomApp instance>, app=<the same ZoomApp>, event="meeting.participant_joined",
                           payload={...}, delivery=<WebhookDelivery>)

`sender` (and `app`) is the ZoomApp instance the event was addressed to (connect without `sender=`),
`payload` the event's fields (already unwrapped from `payload.object` when Zoom nests them).
Sent after the delivery's transaction committed, inside the web request: receivers must be quick (enqueue
slow work) and must not raise (`send_robust`: exceptions are logged, the delivery is still acknowledged).
`endpoint.url_validation` is not announced.
"""

import django.dispatch

zoom_event = django.dispatch.Signal()
