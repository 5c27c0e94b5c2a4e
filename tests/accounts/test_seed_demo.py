from django.core.management import call_command

from accounts.models import Organization, User


def test_seed_demo_is_idempotent_and_its_logins_work(db, api_client, capsys):
    call_command("seed_demo")
    call_command("seed_demo")

    assert Organization.objects.filter(slug="demo-clinic").count() == 1
    assert set(User.objects.values_list("username", "role")) >= {
        ("admin", "admin"),
        ("clinician", "clinician"),
        ("staff", "staff"),
    }
    printed = capsys.readouterr().out
    assert "clinician-demo-2024!" in printed
    response = api_client.post(
        "/api/auth/token/", {"username": "clinician", "password": "clinician-demo-2024!"}
    )
    assert response.status_code == 200
