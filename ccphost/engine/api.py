"""The CCP API: each `api_request` method of Amazon's CCP, its parameters checked, mapped to
a service. Used by the CCP socket; reusable by anything that acts for an agent."""

import re
import uuid
from collections.abc import Callable
from typing import Any

from ccphost.engine import configuration, services
from ccphost.engine.core import EngineError, invalid_parameter, loaded_settings, not_found
from ccphost.engine.models import Agent, AgentState, Queue, QuickConnect
from ccphost.engine.services import Endpoint

UUID_TEXT = re.compile(r"^[0-9a-fA-F-]{32,36}$")
MAX_ENDPOINTS_PAGE = 100

Params = dict[str, Any]


def text(params: Params, name: str, max_length: int = 200, required: bool = True) -> str:
    value = params.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value) or len(value) > max_length:
        raise invalid_parameter(f"{name}: a string of at most {max_length} characters is required.")
    return value


def identifier(params: Params, name: str) -> str:
    value = text(params, name, 64)
    if not UUID_TEXT.match(value):
        raise invalid_parameter(f"{name}: {value!r} is not a valid id.")
    return value


def flag(params: Params, name: str, default: bool) -> bool:
    value = params.get(name, default)
    if not isinstance(value, bool):
        raise invalid_parameter(f"{name}: true or false.")
    return value


def last_segment(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def uuid_or_none(value: str) -> uuid.UUID | None:
    """The id in ``value`` (hex digits, with or without hyphens, any case), as Django's
    lookups of a UUID field read one; None for anything else."""
    if not UUID_TEXT.match(value):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def enabled_states(agent: Agent) -> list[AgentState]:
    """The instance's enabled agent states, from the configuration cache: a state change
    of the CCP need not read them (the request's agent comes with its instance's settings,
    consumers.REQUEST_AGENT). Shared: never change one."""
    instance = agent.instance
    return configuration.cached(
        loaded_settings(instance),
        "enabled_agent_states",
        lambda: list(AgentState.objects.filter(instance=instance, enabled=True)),
    )


def agent_state_param(agent: Agent, params: Params) -> AgentState:
    state = params.get("state")
    if not isinstance(state, dict):
        raise invalid_parameter("state: an entry of configuration.agentStates is required.")
    states = enabled_states(agent)
    arn, name = state.get("agentStateARN"), state.get("name")
    found = None
    if isinstance(arn, str) and arn:
        state_id = uuid_or_none(last_segment(arn))
        found = next((s for s in states if s.state_id == state_id), None)
    elif isinstance(name, str):
        found = next((s for s in states if s.name == name), None)
    if found is None:
        raise not_found(f"state: no agent state {state.get('name') or arn!r} in this instance.")
    return found


def endpoint_param(agent: Agent, params: Params) -> Endpoint:
    endpoint = params.get("endpoint")
    if not isinstance(endpoint, dict):
        raise invalid_parameter("endpoint: an endpoint object is required.")
    arn = endpoint.get("endpointARN") or endpoint.get("endpointId")
    if isinstance(arn, str) and arn:
        key = last_segment(arn)
        quick_connect = (
            QuickConnect.objects.filter(instance=agent.instance, quick_connect_id=key).first()
            if UUID_TEXT.match(key)
            else None
        )
        if quick_connect is not None:
            return Endpoint(
                type=quick_connect.type,
                phone_number=quick_connect.phone_number,
                name=quick_connect.name,
                queue=quick_connect.queue,
                agent=quick_connect.agent,
            )
    number = endpoint.get("phoneNumber")
    if endpoint.get("type", "phone_number") == "phone_number" and isinstance(number, str) and number.strip():
        name = endpoint.get("name")
        return Endpoint(type="phone_number", phone_number=number.strip()[:40], name=str(name or "")[:100])
    raise EngineError("BadEndpointException", "endpoint: a phone number or a quick connect of this instance.", 400)


def queue_param(agent: Agent, params: Params, name: str = "queueARN") -> Queue | None:
    value = params.get(name)
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not UUID_TEXT.match(last_segment(value)):
        raise invalid_parameter(f"{name}: a queue ARN of this instance.")
    queue = Queue.objects.filter(instance=agent.instance, queue_id=last_segment(value)).first()
    if queue is None:
        raise not_found(f"{name}: no queue {value} in this instance.")
    return queue


def put_agent_state(agent: Agent, params: Params) -> Any:
    flag(params, "enqueueNextState", False)
    services.put_agent_state(agent, agent_state_param(agent, params))
    return {}


def update_agent_configuration(agent: Agent, params: Params) -> Any:
    configuration = params.get("configuration")
    if not isinstance(configuration, dict):
        raise invalid_parameter("configuration: the agent's configuration object is required.")
    preferences = configuration.get("agentPreferences") or {}
    if not isinstance(preferences, dict):
        raise invalid_parameter("configuration.agentPreferences: an object.")
    language = preferences.get("LANGUAGE", agent.language)
    if not isinstance(language, str) or not re.fullmatch(r"[a-z]{2}_[A-Z]{2}", language):
        raise invalid_parameter("configuration.agentPreferences.LANGUAGE: a locale like en_US.")
    services.update_agent_configuration(
        agent,
        softphone_enabled=flag(configuration, "softphoneEnabled", agent.softphone_enabled),
        softphone_auto_accept=flag(configuration, "softphoneAutoAccept", agent.softphone_auto_accept),
        extension=text(configuration, "extension", 40, required=False),
        language=language,
    )
    return {}


def create_outbound_contact(agent: Agent, params: Params) -> Any:
    contact = services.create_outbound_contact(agent, endpoint_param(agent, params), queue_param(agent, params))
    return {"contactId": str(contact.contact_id)}


def get_endpoints(agent: Agent, params: Params) -> Any:
    arns = params.get("queueARNs") or []
    if not isinstance(arns, list) or not all(isinstance(a, str) for a in arns):
        raise invalid_parameter("queueARNs: a list of queue ARNs.")
    token = params.get("nextToken")
    if token is not None and (not isinstance(token, str) or not re.fullmatch(r"[0-9]{1,9}", token)):
        raise invalid_parameter("nextToken: a token from a previous getEndpoints answer.")
    max_results = params.get("maxResults", MAX_ENDPOINTS_PAGE)
    if not isinstance(max_results, int) or isinstance(max_results, bool) or not 1 <= max_results <= 1000:
        raise invalid_parameter("maxResults: a number from 1 to 1000.")
    page, next_start = services.list_endpoints(agent, arns, int(token or 0), min(max_results, MAX_ENDPOINTS_PAGE))
    return {"endpoints": [endpoint_data(qc) for qc in page], "nextToken": str(next_start) if next_start else None}


def endpoint_data(quick_connect: QuickConnect) -> dict[str, Any]:
    return {
        "endpointARN": quick_connect.arn,
        "endpointId": quick_connect.arn,
        "type": quick_connect.type,
        "name": quick_connect.name,
        "phoneNumber": quick_connect.phone_number or None,
        "agentLogin": quick_connect.agent.user.get_username() if quick_connect.agent else None,
        "queue": quick_connect.queue.arn if quick_connect.queue else None,
    }


def on_contact(service: Callable[[Agent, str], None]) -> Callable[[Agent, Params], Any]:
    def call(agent: Agent, params: Params) -> Any:
        service(agent, identifier(params, "contactId"))
        return {}

    return call


def on_connection(service: Callable[[Agent, str, str], None]) -> Callable[[Agent, Params], Any]:
    def call(agent: Agent, params: Params) -> Any:
        service(agent, identifier(params, "contactId"), identifier(params, "connectionId"))
        return {}

    return call


def notify_contact_issue(agent: Agent, params: Params) -> Any:
    services.notify_contact_issue(
        agent,
        identifier(params, "contactId"),
        text(params, "issueCode", 100),
        text(params, "description", 2000, required=False),
    )
    return {}


def create_additional_connection(agent: Agent, params: Params) -> Any:
    services.create_additional_connection(agent, identifier(params, "contactId"), endpoint_param(agent, params))
    return {}


def send_digits(agent: Agent, params: Params) -> Any:
    services.send_digits(
        agent, identifier(params, "contactId"), identifier(params, "connectionId"), text(params, "digits", 100)
    )
    return {}


def conference_connections(agent: Agent, params: Params) -> Any:
    services.conference_connections(agent, identifier(params, "contactId"))
    return {}


METHODS: dict[str, Callable[[Agent, Params], Any]] = {
    "putAgentState": put_agent_state,
    "updateAgentConfiguration": update_agent_configuration,
    "createOutboundContact": create_outbound_contact,
    "getEndpoints": get_endpoints,
    "acceptContact": on_contact(services.accept_contact),
    "rejectContact": on_contact(services.reject_contact),
    "completeContact": on_contact(services.complete_contact),
    "clearContact": on_contact(services.clear_contact),
    "destroyContact": on_contact(services.destroy_contact),
    "conferenceConnections": conference_connections,
    "notifyContactIssue": notify_contact_issue,
    "createAdditionalConnection": create_additional_connection,
    "toggleActiveConnections": on_connection(services.toggle_active_connections),
    "destroyConnection": on_connection(services.destroy_connection),
    "holdConnection": on_connection(services.hold_connection),
    "resumeConnection": on_connection(services.resume_connection),
    "muteParticipant": on_connection(services.mute_participant),
    "unmuteParticipant": on_connection(services.unmute_participant),
    "sendDigits": send_digits,
}


def handle_api_request(agent: Agent, method: str, params: Any) -> Any:
    """Run one CCP API method for the agent; raises EngineError for anything refused."""
    handler = METHODS.get(method)
    if handler is None:
        raise EngineError("UnknownMethodException", f"Unknown method {method[:60]!r}.", 400)
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise invalid_parameter("params: a JSON object.")
    return handler(agent, params)
