"""Salesforce records from sGTM event data: default field tables per object, and the checks
Salesforce would otherwise answer with a per-record error."""

from __future__ import annotations

import re
import time
from typing import Any

from sgtm.kit import mapping as m
from sgtm.plugin import EventData, InvalidEvent

# Object -> {field: dotted event key}. Plain text, never hashes: it is the site's own CRM.
DEFAULT_FIELDS: dict[str, dict[str, str]] = {
    "Task": {"Description": "page_location"},
    "Lead": {
        "Email": "user_data.email_address",
        "FirstName": "user_data.address.first_name",
        "LastName": "user_data.address.last_name",
        "Phone": "user_data.phone_number",
        "Street": "user_data.address.street",
        "City": "user_data.address.city",
        "State": "user_data.address.region",
        "PostalCode": "user_data.address.postal_code",
        "Country": "user_data.address.country",
    },
    "Contact": {
        "Email": "user_data.email_address",
        "FirstName": "user_data.address.first_name",
        "LastName": "user_data.address.last_name",
        "Phone": "user_data.phone_number",
        "MailingStreet": "user_data.address.street",
        "MailingCity": "user_data.address.city",
        "MailingState": "user_data.address.region",
        "MailingPostalCode": "user_data.address.postal_code",
        "MailingCountry": "user_data.address.country",
    },
}
# Constant defaults (standard picklist values; an org that renamed them overrides in `fields`).
TASK_CONSTANTS = {"Status": "Completed", "Priority": "Normal"}
# Fields Salesforce requires to create a record (nillable false, no default). An upsert creates
# the record when none matches its External ID, so it needs them too.
REQUIRED_ON_CREATE = {"Lead": ("LastName", "Company"), "Contact": ("LastName",)}
# Standard text lengths: Subject 255, Email 80, names 40/80, Phone 40; long text 32,000.
MAX_LENGTH = {
    "Subject": 255,
    "Email": 80,
    "FirstName": 40,
    "LastName": 80,
    "Company": 255,
    "Phone": 40,
    "Description": 32000,
}
MAX_TEXT = 131072  # the longest text field Salesforce has (Long Text Area)

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
OBJECT_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(__c|__e)?$")


def record(event: EventData, settings: Any, now: float) -> dict[str, Any]:
    """One sObject record (without `attributes`) for this event."""
    fields = m.read(event, DEFAULT_FIELDS.get(settings.object, {}))
    if settings.object == "Task":
        fields.update(TASK_CONSTANTS)
        fields["Subject"] = m.text(settings.subject) or f"Website: {event.get('event_name')}"
        # The day the visitor acted, in UTC (Task.ActivityDate is a date).
        fields["ActivityDate"] = time.strftime("%Y-%m-%d", time.gmtime(now))
    fields = m.overlay(fields, settings.fields)
    for name, value in fields.items():
        if isinstance(value, (dict, list)):
            raise InvalidEvent(
                f"{name}: Salesforce fields take a single value, got a {type(value).__name__}"
            )
        if isinstance(value, str):
            limit = MAX_LENGTH.get(name, MAX_TEXT)
            if len(value) > limit:
                raise InvalidEvent(f"{name} is longer than {limit} characters")
    if "Email" in fields:
        cleaned = m.email(fields["Email"])
        if cleaned is None:
            raise InvalidEvent("Email is not a valid address")
        fields["Email"] = cleaned
    if settings.mode != "create":
        key = "Id" if settings.mode == "update" else settings.match_field
        if key not in fields:
            raise InvalidEvent(f"no {key}: {settings.mode} needs it in fields to find the record")
    if settings.mode != "update":
        for name in REQUIRED_ON_CREATE.get(settings.object, ()):
            if name not in fields:
                how = (
                    "" if settings.mode == "create" else " (an upsert creates it when none matches)"
                )
                raise InvalidEvent(
                    f"{settings.object} needs {name} to be created{how}: map it in fields"
                )
    return fields
