"""The Django admin, bent to the product's rules.

Users: changing roles (groups) or deactivating someone in the admin goes through the same service
functions' follow-up as the pages and the API (audit entry, tokens revoked, staff flag synced).
API tokens: read-only, with a "revoke" action. The audit log: read-only for everyone, superusers too.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from models_service.access import Role
from models_service.models.audit import AuditEntry
from portal import accounts, tokens
from portal.models import ApiToken

SOURCE = "page"
User = get_user_model()


class PortalUserAdmin(UserAdmin):
    # Roles are groups; per-user permissions and the staff flag follow from them, so they are not
    # offered here (accounts.roles_changed sets is_staff for platform admins).
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name", "email")}),
        ("Roles and access", {"fields": ("is_active", "groups", "is_superuser")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    list_display = ("username", "email", "first_name", "last_name", "is_active", "is_staff")
    list_filter = ("is_active", "groups", "is_superuser")

    def get_form(self, request: Any, obj: Any = None, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, **kwargs)
        actor = request.user

        class SelfGuardedForm(form):
            """The rule of accounts.set_roles/set_active, as form errors: not oneself."""

            def clean(self) -> dict[str, Any]:
                data = super().clean()
                if self.instance.pk is None or self.instance.pk != actor.pk:
                    return data
                if data.get("is_active") is False:
                    self.add_error("is_active", "You cannot deactivate yourself: ask another platform admin.")
                groups = data.get("groups")
                keeps_admin = groups is None or any(group.name == Role.ADMIN for group in groups)
                if Role.ADMIN in accounts.group_roles(self.instance) and not keeps_admin:
                    self.add_error(
                        "groups", "You cannot remove your own admin role: ask another platform admin."
                    )
                return data

        return SelfGuardedForm

    def save_model(self, request: Any, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and "is_active" in form.changed_data:
            accounts.activation_changed(request.user, obj, source=SOURCE)

    def save_related(self, request: Any, form: Any, formsets: Any, change: bool) -> None:
        user = form.instance
        before = accounts.group_roles(user) if change else set()
        super().save_related(request, form, formsets, change)
        after = accounts.group_roles(user)
        if before != after or (change and "is_superuser" in form.changed_data):
            accounts.roles_changed(request.user, user, before, after, source=SOURCE)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "display", "user", "created_at", "expires_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_reason",)
    search_fields = ("user__username", "name", "prefix")
    exclude = ("digest",)
    actions = ["revoke"]

    def has_add_permission(self, request: Any) -> bool:
        return False  # a token is shown once to its creator: make them on the profile page or the API

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    @admin.action(description="Revoke selected tokens", permissions=["view"])
    def revoke(self, request: Any, queryset: Any) -> None:
        count = sum(tokens.revoke_token(request.user, token, source=SOURCE) for token in queryset)
        self.message_user(request, f"{count} token(s) revoked.", messages.SUCCESS)


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("at", "actor_name", "action", "object_type", "object_repr", "sha", "source")
    list_filter = ("source", "action", "object_type")
    search_fields = ("actor_name", "action", "object_id", "object_repr", "sha")
    date_hierarchy = "at"

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False


admin.site.unregister(User)
admin.site.register(User, PortalUserAdmin)
admin.site.site_header = "dmaas administration"
admin.site.site_title = "dmaas admin"
