"""The simulated telephone network's customers: they call a queue, ask for a callback, press
digits and hang up. The simulator API, `manage.py simulate` and admin actions call these."""

import re
from typing import Any

from ccphost.engine import dialplan
from ccphost.engine.core import engine_transaction, invalid_parameter, invalid_state, not_found
from ccphost.engine.events import record_contact_event
from ccphost.engine.lifecycle import customer_connection, end_contact, enqueue
from ccphost.engine.models import Connection, Contact, Queue
from ccphost.instances.models import Instance

ATTRIBUTE_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
MAX_ATTRIBUTES = 50
CUSTOMER_DIGITS = re.compile(r"^[0-9*#]{1,100}$")


def find_queue(instance: Instance, reference: str) -> Queue:
    """A queue by name, id or ARN."""
    key = reference.rsplit("/", 1)[-1]
    queues = Queue.objects.filter(instance=instance)
    queue = queues.filter(name=reference).first()
    if queue is None and re.fullmatch(r"[0-9a-fA-F-]{32,36}", key):
        queue = queues.filter(queue_id=key).first()
    if queue is None:
        raise not_found(f"queue: no queue {reference!r} in instance {instance.alias}.")
    return queue


def find_contact(instance: Instance, contact_id: str) -> Contact:
    if not re.fullmatch(r"[0-9a-fA-F-]{32,36}", contact_id):
        raise invalid_parameter(f"contactId: {contact_id!r} is not a contact id.")
    contact = Contact.objects.select_for_update().filter(instance=instance, contact_id=contact_id).first()
    if contact is None:
        raise not_found(f"No contact {contact_id} in instance {instance.alias}.")
    return contact


def clean_attributes(attributes: Any) -> dict[str, str]:
    if attributes is None:
        return {}
    if not isinstance(attributes, dict) or len(attributes) > MAX_ATTRIBUTES:
        raise invalid_parameter(f"attributes: an object of at most {MAX_ATTRIBUTES} string values.")
    for key, value in attributes.items():
        if not ATTRIBUTE_KEY.match(key) or not isinstance(value, str | int | float | bool) or len(str(value)) > 1024:
            raise invalid_parameter(f"attributes.{key}: keys are [A-Za-z0-9_.-], values strings of 1024 at most.")
    return {key: str(value) for key, value in attributes.items()}


def customer_number(number: str, field: str) -> str:
    normalized = dialplan.normalize_number(number)
    if not dialplan.is_e164(normalized):
        raise invalid_parameter(f"{field}: {number!r} is not an E.164 phone number like +15555550100.")
    return normalized


def start_inbound_contact(
    instance: Instance,
    queue: Queue,
    from_number: str,
    attributes: dict[str, Any] | None = None,
    type_: str = Contact.Type.VOICE,
) -> Contact:
    """A customer calls (or asks for a callback to) a queue; routing offers it to an agent."""
    number = customer_number(from_number, "from" if type_ == Contact.Type.VOICE else "number")
    cleaned = clean_attributes(attributes)
    if queue.instance_id != instance.pk:
        raise not_found(f"queue: {queue.name} is not a queue of {instance.alias}.")
    callback = type_ == Contact.Type.QUEUE_CALLBACK
    with engine_transaction(instance) as changes:
        contact = Contact.objects.create(
            instance=instance,
            type=type_,
            initiation_method=Contact.InitiationMethod.CALLBACK if callback else Contact.InitiationMethod.INBOUND,
            state_since=changes.now,
            queue=queue,
            customer_number=number,
            attributes=cleaned,
            created_at=changes.now,
        )
        Connection.objects.create(
            contact=contact,
            type=Connection.Type.OUTBOUND if callback else Connection.Type.INBOUND,
            initial=True,
            state=Connection.State.INIT if callback else Connection.State.CONNECTED,
            state_since=changes.now,
            phone_number=number,
            endpoint_name=number,
            created_at=changes.now,
        )
        record_contact_event(changes, contact, "INITIATED")
        enqueue(changes, contact)
    return contact


def start_queue_callback(
    instance: Instance, queue: Queue, number: str, attributes: dict[str, Any] | None = None
) -> Contact:
    return start_inbound_contact(instance, queue, number, attributes, type_=Contact.Type.QUEUE_CALLBACK)


def customer_hangs_up(instance: Instance, contact_id: str) -> Contact:
    with engine_transaction(instance) as changes:
        contact = find_contact(instance, contact_id)
        customer = customer_connection(contact)
        if contact.state == Contact.State.ENDED or customer.state not in (
            *Connection.LIVE_STATES,
            Connection.State.INIT,
        ):
            raise invalid_state(f"Contact {contact_id} has already ended.")
        if contact.type == Contact.Type.QUEUE_CALLBACK and customer.state == Connection.State.INIT:
            raise invalid_state("The customer of a callback is not on the line until an agent calls back.")
        end_contact(changes, contact)
    return contact


def customer_presses_digits(instance: Instance, contact_id: str, digits: str) -> Contact:
    if not isinstance(digits, str) or not CUSTOMER_DIGITS.match(digits):
        raise invalid_parameter("digits: only 0-9, * and #, 1 to 100 of them.")
    with engine_transaction(instance) as changes:
        contact = find_contact(instance, contact_id)
        if customer_connection(contact).state != Connection.State.CONNECTED:
            raise invalid_state("Only a customer on the line (not on hold, not ended) can press digits.")
        contact.customer_digits += digits
        contact.save()
        record_contact_event(changes, contact, "CUSTOMER_DIGITS", Digits=digits)
    return contact
