from django.urls import path, re_path

from fhir import views

urlpatterns = [
    path("metadata", views.MetadataView.as_view(), name="fhir-metadata"),
    path("Patient", views.PatientSearchView.as_view(), name="fhir-patient-list"),
    # Regexes with an escaped `$`: a route's literal `$` would be dropped from the OpenAPI
    # paths. Before Patient/<id>: `$export` is not a patient id.
    re_path(r"^Patient/\$export$", views.PatientExportView.as_view(), name="fhir-patient-export"),
    path("Patient/<str:pk>", views.PatientReadView.as_view(), name="fhir-patient-detail"),
    path(
        "DocumentReference",
        views.DocumentReferenceSearchView.as_view(),
        name="fhir-documentreference-list",
    ),
    path(
        "DocumentReference/<str:pk>",
        views.DocumentReferenceReadView.as_view(),
        name="fhir-documentreference-detail",
    ),
    path(
        "DocumentReference/<str:pk>/file",
        views.DocumentFileView.as_view(),
        name="fhir-documentreference-file",
    ),
    re_path(
        r"^Group/(?P<group_id>[^/]+)/\$export$",
        views.GroupExportView.as_view(),
        name="fhir-group-export",
    ),
    # The status and file URLs are opaque to Bulk Data clients (they follow Content-Location
    # and the manifest's urls).
    path("bulk-status/<uuid:key>", views.ExportStatusView.as_view(), name="fhir-export-status"),
    path(
        "bulk-files/<uuid:key>/<int:index>",
        views.ExportFileView.as_view(),
        name="fhir-export-file",
    ),
]
