"""Engine-owned rows are inserted with ``save()`` but never updated by it: the engine's
conditional updates are their only writer once they exist."""

import pytest
from django.db import IntegrityError, transaction

from builds.models import BuildMessage, BuildTarget, EngineOwnedRowError
from tests.admin.conftest import ENGINE_OWNED

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model", ENGINE_OWNED, ids=lambda model: model.__name__)
def test_saving_an_existing_engine_owned_row_is_refused_and_changes_nothing(engine_rows, model):
    row = engine_rows[model]
    before = model.objects.filter(pk=row.pk).values().get()
    with pytest.raises(EngineOwnedRowError):
        row.save()
    with pytest.raises(EngineOwnedRowError):
        row.save(update_fields=[model._meta.concrete_fields[-1].name])
    assert model.objects.filter(pk=row.pk).values().get() == before


def test_a_new_engine_owned_row_is_inserted_by_save(engine_rows):
    target = engine_rows[BuildTarget]
    message = BuildMessage(
        receiver_phid=target.phid, target=target, build=target.build, type="work"
    )
    message.save()
    assert BuildMessage.objects.get(pk=message.pk).type == "work"


def test_an_unsaved_instance_given_an_existing_id_cannot_overwrite_that_row(engine_rows):
    target = engine_rows[BuildTarget]
    impostor = BuildTarget(
        pk=target.pk,
        build=target.build,
        step_key=target.step_key,
        generation=target.generation,
        name="impostor",
        status="waiting",
        date_created=target.date_created,
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        impostor.save()
    assert BuildTarget.objects.get(pk=target.pk).status == "passed"
