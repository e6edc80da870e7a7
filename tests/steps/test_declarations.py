"""The step catalogue and what plan import checks against it agree."""

import pytest

from builds.step_options import DECLARATIONS
from builds.variables import PARAMETER_PREFIX, VARIABLE_NAMES, target_variables
from tests.steps.conftest import make_target
from workers.steps import STEP_TYPES, StepContext


def test_every_step_type_runs_with_the_declaration_plan_import_checks():
    assert set(STEP_TYPES) == set(DECLARATIONS)
    for name, step_class in STEP_TYPES.items():
        assert step_class.declaration is DECLARATIONS[name]


@pytest.mark.django_db
def test_the_variables_plan_import_knows_are_the_ones_a_target_has(buildable):
    target = make_target("sleep", {}, buildable, parameters={"region": "eu"})

    names = set(target_variables(target))

    assert names - set(VARIABLE_NAMES) == {f"{PARAMETER_PREFIX}region"}
    assert set(VARIABLE_NAMES) <= names


@pytest.mark.django_db
def test_a_step_reads_an_option_it_was_not_given_from_its_declared_default(buildable):
    context = StepContext(make_target("http", {"uri": "http://127.0.0.1:9/"}, buildable))

    assert (context.option("method"), context.option("max_redirects")) == ("POST", 5)
