"""Django admin for Harbor's objects. The admin is for looking: plans and steps are edited
here, but the rows the engine and the API write (buildables, builds, targets, messages,
events and what targets report) are shown read-only, since a form saved over one would
write back what it read (see ``models.EngineOwned``)."""

from django.contrib import admin

from builds import models


@admin.register(models.BuildPlan)
class BuildPlanAdmin(admin.ModelAdmin):
    list_display = ("name", "phid", "status")
    # auto_key marks the plan Conduit's autotargets create and look up by it.
    readonly_fields = ("phid", "auto_key")


@admin.register(models.BuildStep)
class BuildStepAdmin(admin.ModelAdmin):
    list_display = ("key", "plan", "step_type", "wait_for_message")
    readonly_fields = ("phid",)


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


@admin.register(models.BuildTarget)
class BuildTargetAdmin(EngineOwnedAdmin):
    list_display = ("id", "phid", "build", "step_key", "generation", "status", "attempt")
    list_filter = ("status",)
    list_select_related = ("build__plan",)


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
