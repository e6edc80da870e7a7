"""Django admin for Harbor's objects. Read-mostly: statuses change only through the engine."""

from django.contrib import admin

from builds import models

STATUS_FIELDS = ("status",)


@admin.register(models.BuildPlan)
class BuildPlanAdmin(admin.ModelAdmin):
    list_display = ("name", "phid", "status")
    readonly_fields = ("phid",)


@admin.register(models.BuildStep)
class BuildStepAdmin(admin.ModelAdmin):
    list_display = ("key", "plan", "step_type", "wait_for_message")
    readonly_fields = ("phid",)


@admin.register(models.Buildable)
class BuildableAdmin(admin.ModelAdmin):
    list_display = ("id", "phid", "repository", "ref", "commit", "status")
    readonly_fields = ("phid", "status")


@admin.register(models.Build)
class BuildAdmin(admin.ModelAdmin):
    list_display = ("id", "phid", "plan", "status", "generation", "date_created")
    list_filter = ("status",)
    readonly_fields = ("phid", "status", "generation", "plan_snapshot")


@admin.register(models.BuildTarget)
class BuildTargetAdmin(admin.ModelAdmin):
    list_display = ("id", "phid", "build", "step_key", "generation", "status", "attempt")
    list_filter = ("status",)
    readonly_fields = ("phid", "status", "attempt", "lease_expires")


@admin.register(models.BuildMessage)
class BuildMessageAdmin(admin.ModelAdmin):
    list_display = ("id", "type", "receiver_phid", "is_consumed", "outcome", "date_created")
    readonly_fields = ("is_consumed", "date_consumed", "outcome")


@admin.register(models.StatusEvent)
class StatusEventAdmin(admin.ModelAdmin):
    list_display = ("at", "build", "target", "from_status", "to_status", "cause")


for model in (models.UnitResult, models.LintMessage, models.BuildLog, models.Artifact):
    admin.site.register(model)
