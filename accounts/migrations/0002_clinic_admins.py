"""Clinic admins are not superusers (docs/architecture.md, "Two kinds of administrator").

Before the constraint that a superuser has no organization and everyone else has one, existing
superusers who belong to a clinic (the old demo admin among them) become clinic admins: they keep
their clinic and staff status, lose `is_superuser`, and join the "Clinic administrators" group,
which this migration creates with its permissions. A non-superuser without an organization can't
be placed in a clinic by guesswork: the migration stops and names them.
"""

import django.db.models.deletion
from django.contrib.auth.management import create_permissions
from django.db import migrations, models

import accounts.models
from accounts.onboarding import sync_clinic_admin_group


def _create_permissions(apps):
    # Permissions are normally created after migrate (post_migrate); the group needs them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None


def forwards(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    homeless = list(
        User.objects.filter(is_superuser=False, organization__isnull=True).values_list(
            "username", flat=True
        )
    )
    if homeless:
        raise RuntimeError(
            "These users are neither superusers nor members of a clinic; give each an "
            f"organization (or make them superusers) and migrate again: {', '.join(homeless)}"
        )
    _create_permissions(apps)
    group = sync_clinic_admin_group(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))
    User.objects.filter(is_superuser=True, organization__isnull=False).update(
        is_superuser=False, role="admin", is_staff=True
    )
    for user in User.objects.filter(is_superuser=False, role="admin", is_staff=True):
        user.groups.add(group)
        user.user_permissions.clear()


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0001_initial'),
        ('auth', '0012_alter_user_first_name_max_length'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('patient', '0004_trigram_statistics'),
        ('document', '0002_search_trigram_indexes'),
        ('audit', '0003_source'),
        ('otp', '0001_initial'),
    ]

    operations = [
        migrations.RunPython(forwards, migrations.RunPython.noop),
        migrations.AlterModelManagers(
            name='user',
            managers=[
                ('objects', accounts.models.ClinicUserManager()),
            ],
        ),
        migrations.AlterField(
            model_name='user',
            name='organization',
            field=models.ForeignKey(blank=True, help_text='Every clinic user has one; superusers (platform operators) have none.', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='users', to='accounts.organization'),
        ),
        migrations.AddConstraint(
            model_name='user',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('is_superuser', True), ('organization__isnull', True)), models.Q(('is_superuser', False), ('organization__isnull', False)), _connector='OR'), name='accounts_user_superuser_xor_organization', violation_error_message='A superuser has no organization; every other user has one.'),
        ),
    ]
