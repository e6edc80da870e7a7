from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.utils import timezone

from accounts.models import ApiToken, User


@admin.register(User)
class HarborUserAdmin(UserAdmin):
    readonly_fields = ("phid",)
    list_display = ("username", "phid", "is_staff")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "created", "last_used", "revoked")
    # Revoking is an action, not a field: a form opened before a revoke would otherwise
    # save the token active again. last_used is the API's to write.
    readonly_fields = ("token_hash", "created", "last_used", "revoked")
    actions = ("revoke_tokens",)

    def save_model(self, request, obj, form, change) -> None:
        """Write only the fields the form changed, so a change form never writes back the
        ``revoked`` and ``last_used`` it was opened with."""
        if change:
            obj.save(update_fields=form.changed_data)
        else:
            super().save_model(request, obj, form, change)

    @admin.action(description="Revoke selected API tokens")
    def revoke_tokens(self, request, queryset) -> None:
        # Conditional, so a token revoked meanwhile keeps its first revocation time.
        count = queryset.filter(revoked__isnull=True).update(revoked=timezone.now())
        self.message_user(request, f"Revoked {count} API token(s).")
