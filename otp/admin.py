from django.contrib import admin
from django.http import HttpRequest

from otp.models import OTPCode
from pms.admin import ScopedAdmin


@admin.register(OTPCode)
class OTPCodeAdmin(ScopedAdmin):
    """For support: who asked for which code, when, how many tries, whether it was used.

    Codes are issued only through the API; here a clinic admin inspects their clinic's codes,
    a platform operator may also delete one (which kills it); nobody creates or edits them, and
    the HMAC is not shown.
    """

    list_display = ["id", "user", "purpose", "created_at", "expires_at", "attempts", "consumed_at"]
    list_filter = ["purpose", "created_at", "consumed_at"]
    search_fields = ["user__username", "user__email"]
    list_select_related = ["user"]
    fields = readonly_fields = (
        "user",
        "purpose",
        "created_at",
        "expires_at",
        "attempts",
        "consumed_at",
    )
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: OTPCode | None = None) -> bool:
        return False
