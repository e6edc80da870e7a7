"""Django admin for Harbor's objects. The admin is for looking: plans and steps are edited
here, but the rows the engine and the API write (buildables, builds, targets, messages,
events and what targets report) are shown read-only, since a form saved over one would
write back what it read (see ``models.EngineOwned``)."""

import json
from typing import Any

from django.contrib import admin
from django.utils.html import format_html

from builds import models
from builds.plan_versions import mask_yaml
from builds.secrets import mask_config
from builds.variables import mask_variables, secret_values


def masked_json(value: Any) -> str:
    """``value`` (already masked) as indented JSON, for a read-only admin field: a
    configuration is shown with its secrets hidden, never as an editable raw field."""
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True))


@admin.register(models.BuildPlan)
class BuildPlanAdmin(admin.ModelAdmin):
    list_display = ("name", "phid", "status")
    # auto_key marks the plan Conduit's autotargets create and look up by it.
    readonly_fields = ("phid", "auto_key")


@admin.register(models.BuildStep)
class BuildStepAdmin(admin.ModelAdmin):
    list_display = ("key", "plan", "step_type", "wait_for_message")
    exclude = ("config",)
    readonly_fields = ("phid", "masked_config")

    @admin.display(description="config")
    def masked_config(self, step: models.BuildStep) -> str:
        return masked_json(mask_config(step.config))


class EngineOwnedAdmin(admin.ModelAdmin):
    """Lists and shows an engine-owned model's rows; never adds, changes or deletes one."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(models.Buildable)
class BuildableAdmin(EngineOwnedAdmin):
    list_display = ("id", "phid", "repository", "ref", "commit", "status")


@admin.register(models.Build)
class BuildAdmin(EngineOwnedAdmin):
    list_display = ("id", "phid", "plan", "status", "generation", "date_created")
    list_filter = ("status",)
    list_select_related = ("plan",)
    exclude = ("parameters", "plan_snapshot")
    readonly_fields = ("phid", "status", "generation", "masked_parameters", "masked_snapshot")

    @admin.display(description="parameters")
    def masked_parameters(self, build: models.Build) -> str:
        return masked_json(mask_config(build.parameters))

    @admin.display(description="plan snapshot")
    def masked_snapshot(self, build: models.Build) -> str:
        # Only each step's config: a step's own "key" is its name in the plan, not a secret.
        steps = [
            {**step, "config": mask_config(step.get("config", {}))} for step in build.plan_snapshot
        ]
        return masked_json(steps)


@admin.register(models.BuildTarget)
class BuildTargetAdmin(EngineOwnedAdmin):
    list_display = ("id", "phid", "build", "step_key", "generation", "status", "attempt")
    list_filter = ("status",)
    list_select_related = ("build__plan",)
    exclude = ("config", "variables")
    readonly_fields = (
        "phid",
        "status",
        "attempt",
        "lease_expires",
        "masked_config",
        "masked_variables",
    )

    @admin.display(description="config")
    def masked_config(self, target: models.BuildTarget) -> str:
        return masked_json(mask_config(target.config, secret_values(target)))

    @admin.display(description="variables")
    def masked_variables(self, target: models.BuildTarget) -> str:
        return masked_json(mask_variables(target.variables, secret_values(target)))


@admin.register(models.BuildMessage)
class BuildMessageAdmin(EngineOwnedAdmin):
    list_display = ("id", "type", "receiver_phid", "is_consumed", "outcome", "date_created")


@admin.register(models.StatusEvent)
class StatusEventAdmin(EngineOwnedAdmin):
    list_display = ("at", "build", "target", "from_status", "to_status", "cause")
    list_select_related = ("build__plan", "target")


for model in (
    models.UnitResult,
    models.LintMessage,
    models.BuildLog,
    models.BuildLogChunk,
    models.Artifact,
):
    admin.site.register(model, EngineOwnedAdmin)


@admin.register(models.BuildPlanVersion)
class BuildPlanVersionAdmin(EngineOwnedAdmin):
    """Versions are history: written only by a plan's change (builds.plan_versions)."""

    list_display = ("plan", "number", "author", "date_created")
    exclude = ("yaml",)
    readonly_fields = ("masked_yaml",)

    @admin.display(description="YAML (secrets masked)")
    def masked_yaml(self, version: models.BuildPlanVersion) -> str:
        return format_html("<pre>{}</pre>", mask_yaml(version.yaml))


@admin.register(models.ConcurrencyGroup)
class ConcurrencyGroupAdmin(EngineOwnedAdmin):
    """A group's row is the engine's lock for its admissions (builds.engine.concurrency)."""

    list_display = ("name", "date_created")
