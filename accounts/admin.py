from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from accounts.models import ApiToken, User


@admin.register(User)
class HarborUserAdmin(UserAdmin):
    readonly_fields = ("phid",)
    list_display = ("username", "phid", "is_staff")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "created", "last_used", "revoked")
    readonly_fields = ("token_hash", "created", "last_used")
