"""Django admin for Harbor's objects. Read-mostly: statuses change only through the engine."""

import json
from typing import Any

from django.contrib import admin
from django.utils.html import format_html

from builds import models
from builds.secrets import mask_config
from builds.variables import mask_variables, secret_values

STATUS_FIELDS = ("status",)


def masked_json(value: Any) -> str:
    """``value`` (already masked) as indented JSON, for a read-only admin field: a
    configuration is shown with its secrets hidden, never as an editable raw field."""
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True))


@admin.register(models.BuildPlan)
class BuildPlanAdmin(admin.ModelAdmin):
    list_display = ("name", "phid", "status")
    readonly_fields = ("phid",)


@admin.register(models.BuildStep)
class BuildStepAdmin(admin.ModelAdmin):
    list_display = ("key", "plan", "step_type", "wait_for_message")
    exclude = ("config",)
    readonly_fields = ("phid", "masked_config")

    @admin.display(description="config")
    def masked_config(self, step: models.BuildStep) -> str:
        return masked_json(mask_config(step.config))


@admin.register(models.Buildable)
class BuildableAdmin(admin.ModelAdmin):
    list_display = ("id", "phid", "repository", "ref", "commit", "status")
    readonly_fields = ("phid", "status")


@admin.register(models.Build)
class BuildAdmin(admin.ModelAdmin):
    list_display = ("id", "phid", "plan", "status", "generation", "date_created")
    list_filter = ("status",)
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
class BuildTargetAdmin(admin.ModelAdmin):
    list_display = ("id", "phid", "build", "step_key", "generation", "status", "attempt")
    list_filter = ("status",)
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
class BuildMessageAdmin(admin.ModelAdmin):
    list_display = ("id", "type", "receiver_phid", "is_consumed", "outcome", "date_created")
    readonly_fields = ("is_consumed", "date_consumed", "outcome")


@admin.register(models.StatusEvent)
class StatusEventAdmin(admin.ModelAdmin):
    list_display = ("at", "build", "target", "from_status", "to_status", "cause")


for model in (models.UnitResult, models.LintMessage, models.BuildLog, models.Artifact):
    admin.site.register(model)
