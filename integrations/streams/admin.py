from django.contrib import admin

from integrations.streams.models import KinesisStream


@admin.register(KinesisStream)
class KinesisStreamAdmin(admin.ModelAdmin):
    list_display = ["instance", "records", "stream_name", "region", "enabled", "last_sequence", "last_error"]
    list_filter = ["records", "enabled", "instance"]
    readonly_fields = ["last_sequence", "last_error", "updated_at"]
