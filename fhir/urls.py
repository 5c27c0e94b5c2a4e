from django.urls import path

from fhir import views

urlpatterns = [
    path("metadata", views.MetadataView.as_view(), name="fhir-metadata"),
    path("Patient", views.PatientSearchView.as_view(), name="fhir-patient-list"),
    # Before Patient/<id>: `$export` is not a patient id.
    path("Patient/$export", views.PatientExportView.as_view(), name="fhir-patient-export"),
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
    path("Group/<str:group_id>/$export", views.GroupExportView.as_view(), name="fhir-group-export"),
    path("$export-status/<uuid:key>", views.ExportStatusView.as_view(), name="fhir-export-status"),
    path(
        "$export-file/<uuid:key>/<int:index>",
        views.ExportFileView.as_view(),
        name="fhir-export-file",
    ),
]
