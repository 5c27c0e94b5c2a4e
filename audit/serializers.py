from rest_framework import serializers

from audit.models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "occurred_at",
            "actor",
            "actor_username",
            "action",
            "resource_type",
            "resource_id",
            "patient_ids",
            "outcome",
            "status_code",
            "method",
            "path",
            "ip_address",
            "user_agent",
            "request_id",
            "details",
            "source",
        ]
        read_only_fields = fields
