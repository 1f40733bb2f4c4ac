"""Delivery: getting what tags build to the vendors."""

from sgtm.delivery.base import Delivery, DeliveryUnavailable, Submission
from sgtm.delivery.recorder import RecorderDelivery

__all__ = ["Delivery", "DeliveryUnavailable", "RecorderDelivery", "Submission"]
