"""Notifications: events from the outbox, routed to webhooks and e-mail, delivered once.

`collector.outbox` stores events beside the state changes that cause them; the
`Evaluator` adds those that follow from time passing (budget levels, breaches,
maintenance, links the monitor cannot see); the `Dispatcher` turns each event into a
delivery per route that takes it and sends them at least once, with retries, hold-down
and flap damping. A customer's route only ever receives that customer's own events.
Nothing here probes a target or computes availability (that is `sla/`).
"""

from notify.channels import DeliveryError, send
from notify.dispatcher import Dispatcher
from notify.evaluator import Evaluator
from notify.messages import Message, render

__all__ = ["DeliveryError", "Dispatcher", "Evaluator", "Message", "render", "send"]
