"""Receiving a forge event: record the delivery and start the builds it triggers, in one
transaction, once per delivery id however often (or however concurrently) it arrives."""

import logging
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from builds import engine
from builds.models import Build, BuildPlan
from forges.config import Forge
from forges.events import ForgeEvent
from forges.models import Delivery
from forges.triggers import plans_to_start

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryReceipt:
    """What became of a delivery: its ``builds`` (ids, in order), why it started none
    (``ignored``, else ''), and whether it was a ``duplicate`` of one received before (whose
    builds these are; it started nothing itself)."""

    delivery_id: str
    builds: list[int]
    ignored: str
    duplicate: bool


class DuplicateDelivery(Exception):
    """The forge's delivery id is recorded already."""


def receive_delivery(
    forge: Forge, delivery_id: str, event_name: str, event: ForgeEvent
) -> DeliveryReceipt:
    """Record delivery ``delivery_id`` of ``event`` (the forge calls it ``event_name``)
    from ``forge`` and start a build of every plan it triggers, in one transaction. A
    delivery id already recorded starts nothing and returns the first delivery's receipt
    with ``duplicate`` set."""
    try:
        receipt = _record_and_start(forge, delivery_id, event_name, event)
    except DuplicateDelivery:
        return _first_receipt(forge.name, delivery_id)
    logger.info(
        "forge %s delivery %s (%s %s %s): builds %s%s",
        forge.name,
        delivery_id,
        event_name,
        event.repository,
        event.ref,
        receipt.builds,
        f", ignored: {receipt.ignored}" if receipt.ignored else "",
    )
    return receipt


@transaction.atomic
def _record_and_start(
    forge: Forge, delivery_id: str, event_name: str, event: ForgeEvent
) -> DeliveryReceipt:
    plans, ignored = plans_to_start(forge.name, event)
    try:
        # The delivery row goes in first: a second copy of this delivery waits here on the
        # unique index until this transaction ends, then fails (this one committed) or
        # proceeds (it rolled back), so the builds start exactly once.
        with transaction.atomic():
            delivery = Delivery.objects.create(
                forge=forge.name,
                delivery_id=delivery_id,
                event=event_name,
                kind=event.kind,
                repository=event.repository,
                ref=event.ref,
                commit=event.commit,
                ignored=ignored,
            )
    except IntegrityError as error:
        raise DuplicateDelivery from error
    builds = [_start(forge, plan, event) for plan in plans]
    delivery.builds.add(*builds)
    return DeliveryReceipt(delivery_id, [build.pk for build in builds], ignored, False)


def _start(forge: Forge, plan: BuildPlan, event: ForgeEvent) -> Build:
    buildable = engine.find_or_create_buildable(
        repository=event.clone_url,
        ref=event.ref,
        commit=event.commit,
        revision=str(event.pr_number) if event.pr_number is not None else "",
        base_ref=event.base_ref,
        is_manual=False,
        forge=forge.name,
        forge_repository=event.repository,
    )
    return engine.start_build(plan, buildable)


def _first_receipt(forge_name: str, delivery_id: str) -> DeliveryReceipt:
    first = Delivery.objects.get(forge=forge_name, delivery_id=delivery_id)
    builds = list(first.builds.order_by("pk").values_list("pk", flat=True))
    return DeliveryReceipt(delivery_id, builds, first.ignored, True)
