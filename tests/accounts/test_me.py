import pytest

ME_URL = "/api/accounts/me/"


@pytest.mark.parametrize(
    ("actor", "role"),
    [("org_admin", "admin"), ("clinician", "clinician"), ("staff_user", "staff")],
)
def test_me_returns_the_callers_profile_role_and_organization(
    request, client_for, django_assert_num_queries, actor, role
):
    user = request.getfixturevalue(actor)
    client = client_for(user)

    # The user and its organization come from the cache of authenticated users: no query.
    with django_assert_num_queries(0):
        response = client.get(ME_URL)

    assert response.status_code == 200
    body = response.json()
    assert body["username"] == user.username
    assert body["role"] == role
    assert body["organization"] == {
        "id": user.organization.id,
        "name": "Northside Clinic",
        "slug": "northside",
    }


def test_me_needs_authentication(api_client, db):
    response = api_client.get(ME_URL)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")
