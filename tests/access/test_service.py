import pytest

from distillguard.access import AccessService, OrgStatus
from distillguard.config import LimitValues
from distillguard.db.engine import get_engine
from distillguard.db.migrate import upgrade
from distillguard.errors import AuthenticationFailed, Conflict, InvalidRequest, NotFound, PermissionDenied


@pytest.fixture(params=["sqlite", "postgres"])
def access(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'a.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_url")
    upgrade(url)
    svc = AccessService(get_engine(url), "server-secret", org_defaults=LimitValues(rpm=100))
    yield svc


def _active_key(svc):
    org = svc.apply("Acme", "support bot", ["chat"])
    svc.approve(org.id)
    key, secret = svc.create_key(org.id, "k1")
    return org, key, secret


def test_application_lifecycle_and_authentication(access):
    org = access.apply("Acme", "support bot", ["chat", "classification"])
    assert org.status is OrgStatus.PENDING and org.purposes == ["chat", "classification"]
    key, secret = access.create_key(org.id)
    with pytest.raises(PermissionDenied) as e:
        access.authenticate(f"Bearer {secret}")
    assert e.value.code == "application_pending" and e.value.status == 403
    access.approve(org.id)
    p = access.authenticate(f"Bearer {secret}")
    assert p.org.id == org.id and p.key.id == key.id
    assert p.org_limits.rpm == 100  # configured default applies without a row


def test_secret_is_not_stored(access):
    import sqlalchemy as sa

    org, key, secret = _active_key(access)
    with access.store.engine.connect() as c:
        rows = c.execute(sa.text("SELECT * FROM api_keys")).all()
    assert all(secret not in str(tuple(r)) for r in rows)


@pytest.mark.parametrize("header,code", [
    (None, "missing_api_key"),
    ("", "missing_api_key"),
    ("Basic abc", "invalid_authorization_header"),
    ("Bearer", "invalid_authorization_header"),
    ("Bearer dg-" + "x" * 43, "invalid_api_key"),
    ("Bearer sk-garbage", "invalid_api_key"),
])
def test_bad_credentials_are_401(access, header, code):
    with pytest.raises(AuthenticationFailed) as e:
        access.authenticate(header)
    assert e.value.code == code and e.value.status == 401


def test_states_answer_with_their_codes_and_messages(access):
    org, key, secret = _active_key(access)
    auth = f"Bearer {secret}"
    access.authenticate(auth)  # cached now: the state change must still be seen
    access.suspend(org.id, "distillation pattern")
    with pytest.raises(PermissionDenied) as e:
        access.authenticate(auth)
    assert e.value.code == "account_suspended" and "suspended pending investigation" in e.value.message
    access.reinstate(org.id)
    access.authenticate(auth)
    access.require_changes(org.id, "declare your purposes")
    with pytest.raises(PermissionDenied) as e:
        access.authenticate(auth)
    assert e.value.code == "requires_changes" and "declare your purposes" in e.value.message
    access.reinstate(org.id)
    access.terminate(org.id, "confirmed violation")
    with pytest.raises(PermissionDenied) as e:
        access.authenticate(auth)
    assert e.value.code == "account_terminated"
    with pytest.raises(Conflict):
        access.reinstate(org.id)  # terminated is permanent
    with pytest.raises(Conflict):
        access.approve(org.id)


def test_revocation_is_immediate_even_when_cached(access):
    org, key, secret = _active_key(access)
    access.authenticate(f"Bearer {secret}")
    access.revoke_key(key.id)
    with pytest.raises(AuthenticationFailed) as e:
        access.authenticate(f"Bearer {secret}")
    assert e.value.code == "invalid_api_key"


def test_changes_by_another_service_instance_are_seen(access):
    """The CLI is another process with its own AccessService: the server's cache must notice."""
    other = AccessService(access.store.engine, "server-secret")
    org, key, secret = _active_key(access)
    access.authenticate(f"Bearer {secret}")
    other.suspend(org.id, "from the CLI")
    with pytest.raises(PermissionDenied):
        access.authenticate(f"Bearer {secret}")


def test_reject_needs_reason_and_unknown_org(access):
    org = access.apply("Beta")
    with pytest.raises(InvalidRequest):
        access.reject(org.id, "  ")
    assert access.reject(org.id, "no use case").status is OrgStatus.REJECTED
    with pytest.raises(NotFound):
        access.approve("org_doesnotexist")


def test_limits_merge_and_validation(access):
    org, key, secret = _active_key(access)
    out = access.set_limits_for(org=org.name, rpm=5)
    assert out["rpm"] == 5
    out = access.set_limits_for(org=org.id, tpm=1000)
    assert out["rpm"] == 5 and out["tpm"] == 1000
    assert access.authenticate(f"Bearer {secret}").org_limits.tpm == 1000
    access.set_limits_for(key=key.id, daily_tokens=50)
    assert access.authenticate(f"Bearer {secret}").key_limits.daily_tokens == 50
    with pytest.raises(InvalidRequest):
        access.set_limits_for(org=org.id, key=key.id, rpm=1)
    with pytest.raises(InvalidRequest):
        access.set_limits_for(org=org.id, rpm=-1)


def test_keys_of_terminated_org_cannot_be_created(access):
    org, key, secret = _active_key(access)
    access.terminate(org.id, "x")
    with pytest.raises(Conflict):
        access.create_key(org.id)
