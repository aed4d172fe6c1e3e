"""The simulator API: other teams' test suites script the simulated telephone network of
one instance over JSON, with the instance's bearer token (docs/engine.md).

Every refusal is a 4xx with {"error": {"type", "message"}}."""

import json
import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from ccphost.engine import network, snapshots
from ccphost.engine.core import EngineError, invalid_parameter, not_found
from ccphost.engine.events import iso
from ccphost.engine.models import Agent, Contact, EngineEvent, InstanceSettings
from ccphost.engine.timers import run_due_timers
from ccphost.instances.models import Instance

MAX_BODY_BYTES = 64 * 1024
MAX_EVENTS_PAGE = 500

View = Callable[..., JsonResponse]


def error_response(type_: str, message: str, status: int) -> JsonResponse:
    response = JsonResponse({"error": {"type": type_, "message": message}}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="ccphost simulator"'
    return response


def authenticated_instance(request: HttpRequest, alias: str) -> Instance:
    settings = InstanceSettings.objects.select_related("instance").filter(instance__alias=alias).first()
    if settings is None:
        raise EngineError("ResourceNotFoundException", f"No instance {alias!r} with a simulator.", 404)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip(), settings.simulator_token):
        raise EngineError("UnauthorizedException", "Send the instance's simulator token as a Bearer token.", 401)
    return settings.instance


def simulator_view(*methods: str) -> Callable[[View], View]:
    """JSON in and out, the bearer token checked, EngineError turned into a 4xx answer."""

    def decorate(view: View) -> View:
        @csrf_exempt
        @wraps(view)
        def wrapped(request: HttpRequest, alias: str, **kwargs: Any) -> JsonResponse:
            if request.method not in methods:
                return error_response("MethodNotAllowed", f"Use {' or '.join(methods)}.", 405)
            try:
                instance = authenticated_instance(request, alias)
                return view(request, instance, **{name: str(value) for name, value in kwargs.items()})
            except EngineError as refused:
                return error_response(refused.type, refused.message, refused.status_code)

        return wrapped

    return decorate


def json_body(request: HttpRequest) -> dict[str, Any]:
    if len(request.body) > MAX_BODY_BYTES:
        raise EngineError("RequestTooLarge", f"A request body is at most {MAX_BODY_BYTES} bytes.", 413)
    if not request.body:
        return {}
    try:
        body = json.loads(request.body)
    except ValueError:
        raise EngineError("InvalidRequestException", "The body is not valid JSON.", 400) from None
    if not isinstance(body, dict):
        raise EngineError("InvalidRequestException", "The body is a JSON object.", 400)
    return body


def required_text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise invalid_parameter(f"{name}: a non-empty string is required.")
    return value.strip()


def contact_data(contact: Contact) -> dict[str, Any]:
    return {
        "contactId": str(contact.contact_id),
        "initialContactId": str(contact.initial_contact_uuid),
        "type": contact.type,
        "initiationMethod": contact.initiation_method,
        "state": contact.state,
        "queue": {"name": contact.queue.name, "queueARN": contact.queue.arn} if contact.queue else None,
        "waiting": contact.waiting_since is not None,
        "agent": contact.agent.user.get_username() if contact.agent else None,
        "customerNumber": contact.customer_number,
        "attributes": contact.attributes,
        "customerDigits": contact.customer_digits,
        "issues": contact.issues,
        "connections": [
            {
                "connectionId": str(leg.connection_id),
                "type": leg.type,
                "initial": leg.initial,
                "state": leg.state,
                "phoneNumber": leg.phone_number or None,
                "agent": leg.agent.user.get_username() if leg.agent else None,
                "digitsSent": leg.digits_sent,
            }
            for leg in contact.connections.select_related("agent__user")
        ],
        "createdTimestamp": iso(contact.created_at),
        "endedTimestamp": iso(contact.ended_at),
    }


def load_contact(instance: Instance, contact_id: str) -> Contact:
    contact = (
        Contact.objects.select_related("queue__instance", "agent__user", "initial_contact")
        .filter(instance=instance, contact_id=contact_id)
        .first()
    )
    if contact is None:
        raise not_found(f"No contact {contact_id} in instance {instance.alias}.")
    return contact


def start_contact(request: HttpRequest, instance: Instance, number_field: str, callback: bool) -> JsonResponse:
    body = json_body(request)
    queue = network.find_queue(instance, required_text(body, "queue"))
    number = required_text(body, number_field)
    attributes = body.get("attributes")
    if callback:
        contact = network.start_queue_callback(instance, queue, number, attributes)
    else:
        contact = network.start_inbound_contact(instance, queue, number, attributes)
    return JsonResponse(contact_data(load_contact(instance, str(contact.contact_id))), status=201)


@simulator_view("POST")
def inbound_call(request: HttpRequest, instance: Instance) -> JsonResponse:
    return start_contact(request, instance, "from", callback=False)


@simulator_view("POST")
def queue_callback(request: HttpRequest, instance: Instance) -> JsonResponse:
    return start_contact(request, instance, "number", callback=True)


@simulator_view("GET")
def contact_detail(request: HttpRequest, instance: Instance, contact_id: str) -> JsonResponse:
    return JsonResponse(contact_data(load_contact(instance, contact_id)))


@simulator_view("POST")
def customer_hangs_up(request: HttpRequest, instance: Instance, contact_id: str) -> JsonResponse:
    json_body(request)
    network.customer_hangs_up(instance, contact_id)
    return JsonResponse(contact_data(load_contact(instance, contact_id)))


@simulator_view("POST")
def customer_presses_digits(request: HttpRequest, instance: Instance, contact_id: str) -> JsonResponse:
    body = json_body(request)
    network.customer_presses_digits(instance, contact_id, body.get("digits"))  # type: ignore[arg-type]
    return JsonResponse(contact_data(load_contact(instance, contact_id)))


@simulator_view("GET")
def agent_snapshot(request: HttpRequest, instance: Instance, username: str) -> JsonResponse:
    agent = Agent.objects.filter(instance=instance, user__username=username).first()
    if agent is None:
        raise not_found(f"No agent {username!r} in instance {instance.alias}.")
    return JsonResponse(snapshots.snapshot_frame(agent.pk))


@simulator_view("POST")
def run_timers(request: HttpRequest, instance: Instance) -> JsonResponse:
    json_body(request)
    return JsonResponse({"fired": run_due_timers()})


@simulator_view("GET")
def event_log(request: HttpRequest, instance: Instance) -> JsonResponse:
    """Cursor-paged event records: ``?after=<sequence>&limit=<n>&stream=agent|contact``;
    the answer's ``nextAfter`` is the cursor of the next page."""
    after, limit = request.GET.get("after", "0"), request.GET.get("limit", "100")
    stream = request.GET.get("stream", "")
    if not after.isdigit() or not limit.isdigit() or not 1 <= int(limit) <= MAX_EVENTS_PAGE:
        raise invalid_parameter(f"after: a sequence number; limit: 1 to {MAX_EVENTS_PAGE}.")
    if stream not in ("", *EngineEvent.Stream.values):
        raise invalid_parameter("stream: agent or contact.")
    rows = EngineEvent.objects.filter(instance=instance, sequence__gt=int(after)).order_by("sequence")
    if stream:
        rows = rows.filter(stream=stream)
    events = [
        {"sequence": e.sequence, "stream": e.stream, "eventType": e.event_type, "record": e.payload}
        for e in rows[: int(limit)]
    ]
    return JsonResponse({"events": events, "nextAfter": events[-1]["sequence"] if events else int(after)})
