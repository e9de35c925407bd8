"""The organisation over the API: users, groups, departments and skills; who may read and
change what; every change audited with its before and after."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEntry
from app.auth.models import User
from tests.conftest import ORG
from tests.test_api_errors import assert_problem, field_errors
from tests.test_tokens import TokenApi

USERS = "/api/v1/users"
GROUPS = "/api/v1/groups"
DEPARTMENTS = "/api/v1/departments"
SKILLS = "/api/v1/skills"
ORG_LISTS = [USERS, GROUPS, DEPARTMENTS, f"{DEPARTMENTS}/tree", SKILLS]
DISPATCHER_FIELDS = {"id", "username", "display_name", "groups", "skills"}


def user_id(as_user, username: str) -> int:
    found = as_user("admin").get(USERS, query_string={"q": username, "per_page": 200}).json
    return next(u["id"] for u in found["items"] if u["username"] == username)


def audit(db_session, **filters) -> list[AuditEntry]:
    return list(db_session.scalars(select(AuditEntry).filter_by(**filters).order_by(AuditEntry.id)))


@pytest.fixture
def company(as_user):
    """A department tree and skills: 总部 → IT 部, 上海分公司 → 浦东办公室."""
    admin = as_user("admin")
    for code, name, parent in [
        ("hq", "总部", None),
        ("hq_it", "IT 部", "hq"),
        ("shanghai", "上海分公司", "hq"),
        ("pudong", "浦东办公室", "shanghai"),
        ("shenzhen", "深圳分公司", None),
    ]:
        response = admin.post(DEPARTMENTS, json={"code": code, "name": name, "parent": parent})
        assert response.status_code == 201, response.json
    for code, name in [("network", "网络"), ("printer", "打印机"), ("ups", "UPS")]:
        assert admin.post(SKILLS, json={"code": code, "name": name}).status_code == 201
    for username, body in [
        ("net_lead", {"department": "hq_it", "skills": [{"skill": "network", "level": 5}]}),
        ("net1", {"department": "pudong", "skills": [{"skill": "network", "level": 2}]}),
        ("hw1", {"department": "shenzhen", "skills": [{"skill": "printer", "level": 4}]}),
        ("desk", {"department": "shanghai"}),
    ]:
        assert admin.patch(f"{USERS}/{user_id(as_user, username)}", json=body).status_code == 200


# ---------------------------------------------------------------- who may read


@pytest.mark.parametrize("username", ["net1", "reviewer", "alice", "fin1"])
@pytest.mark.parametrize("url", ORG_LISTS)
def test_roles_that_assign_no_work_may_not_list_the_organisation(as_user, username, url):
    assert_problem(as_user(username).get(url), 403)


@pytest.mark.parametrize("url", ORG_LISTS)
def test_dispatchers_and_admins_list_the_organisation(as_user, company, url):
    for username in ("admin", "desk"):
        assert as_user(username).get(url).status_code == 200


def test_a_dispatcher_sees_people_without_personal_data(as_user, company):
    admin_view = as_user("admin").get(USERS, query_string={"q": "net1"}).json["items"][0]
    assert {"role", "email", "phone", "department", "active", "kind"} <= set(admin_view)

    listed = as_user("desk").get(USERS, query_string={"per_page": 200}).json
    assert {frozenset(item) for item in listed["items"]} == {frozenset(DISPATCHER_FIELDS)}
    net1 = next(item for item in listed["items"] if item["username"] == "net1")
    assert net1["groups"] == [{"id": net1["groups"][0]["id"], "code": "network", "name": "网络组"}]
    assert net1["skills"] == [{"skill": "network", "name": "网络", "level": 2}]
    one = as_user("desk").get(f"{USERS}/{net1['id']}").json
    assert set(one) == DISPATCHER_FIELDS


def test_a_dispatcher_sees_neither_system_accounts_nor_deactivated_people(as_user):
    as_user("admin").post("/api/v1/api-tokens", json={"name": "crm", "role": "requester"})
    bob = user_id(as_user, "bob")
    as_user("admin").post(f"{USERS}/{bob}/deactivate")
    names = {
        u["username"]
        for u in as_user("desk").get(USERS, query_string={"per_page": 200}).json["items"]
    }
    assert "system:crm" not in names and "bob" not in names and "alice" in names
    assert_problem(as_user("desk").get(f"{USERS}/{bob}"), 404, str(bob))
    crm = user_id(as_user, "system:crm")
    assert_problem(as_user("desk").get(f"{USERS}/{crm}"), 404, str(crm))


def test_everyone_reads_their_own_account_in_full_and_nobody_elses(as_user, company):
    for username, role, groups, _lead in ORG:
        me = as_user(username).get(f"{USERS}/me")
        assert me.status_code == 200
        assert (me.json["username"], me.json["role"]) == (username, role)
        assert [g["code"] for g in me.json["groups"]] == groups
        assert "password" not in me.json and "password_hash" not in me.json
    net1 = as_user("net1").get(f"{USERS}/me").json
    assert net1["department"]["code"] == "pudong"
    assert as_user("net1").get(f"{USERS}/{net1['id']}").json == net1
    hw1 = user_id(as_user, "hw1")
    for username in ("net1", "alice", "reviewer"):
        assert_problem(as_user(username).get(f"{USERS}/{hw1}"), 404, str(hw1))


@pytest.mark.parametrize("username", ["net1", "alice", "fin1"])
def test_a_single_group_department_or_skill_is_404_to_those_who_may_not_list(
    as_user, company, username
):
    for url in (GROUPS, DEPARTMENTS, SKILLS):
        first = as_user("admin").get(url).json["items"][0]["id"]
        assert as_user("desk").get(f"{url}/{first}").status_code == 200
        assert_problem(as_user(username).get(f"{url}/{first}"), 404, str(first))


@pytest.mark.parametrize("username", ["desk", "net1", "alice"])
def test_only_admins_change_the_organisation(as_user, company, username):
    api = as_user(username)
    net1 = user_id(as_user, "net1")
    group = as_user("admin").get(GROUPS).json["items"][0]["id"]
    department = as_user("admin").get(DEPARTMENTS).json["items"][0]["id"]
    skill = as_user("admin").get(SKILLS).json["items"][0]["id"]
    for response in (
        api.post(USERS, json={"username": "x1", "password": "long-enough-1", "role": "admin"}),
        api.patch(f"{USERS}/{net1}", json={"role": "admin"}),
        api.post(f"{USERS}/{net1}/deactivate"),
        api.post(f"{USERS}/{net1}/activate"),
        api.patch(f"{USERS}/{net1}/password", json={"password": "long-enough-1"}),
        api.post(GROUPS, json={"code": "g1", "name": "组"}),
        api.patch(f"{GROUPS}/{group}", json={"name": "改名"}),
        api.post(DEPARTMENTS, json={"code": "d1", "name": "部门"}),
        api.patch(f"{DEPARTMENTS}/{department}", json={"name": "改名"}),
        api.post(SKILLS, json={"code": "s1", "name": "技能"}),
        api.patch(f"{SKILLS}/{skill}", json={"name": "改名"}),
    ):
        assert_problem(response, 403)


def test_without_a_token_everything_is_401(client):
    for url in [*ORG_LISTS, f"{USERS}/me", f"{USERS}/1", f"{GROUPS}/1"]:
        assert_problem(client.get(url), 401)
    assert_problem(client.post(USERS, json={"username": "x"}), 401)  # before the body is read


# ---------------------------------------------------------------- users


def test_lists_paginate_with_the_total_in_the_body(as_user):
    first = as_user("admin").get(USERS, query_string={"per_page": 5}).json
    second = as_user("admin").get(USERS, query_string={"per_page": 5, "page": 2}).json
    assert (first["total"], first["page"], first["per_page"]) == (len(ORG), 1, 5)
    assert len(first["items"]) == 5 and second["page"] == 2
    usernames = [u["username"] for u in first["items"] + second["items"]]
    assert usernames == sorted(usernames) and len(set(usernames)) == 10
    assert_problem(as_user("admin").get(USERS, query_string={"per_page": 0}), 400, "per_page")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"role": "requester"}, {"alice", "bob"}),
        ({"group": "network"}, {"net_lead", "net1"}),
        ({"q": "LEAD"}, {"net_lead", "hw_lead", "fac_lead"}),
        ({"q": "%"}, set()),  # a wildcard is a character, not a pattern
        ({"department": "shanghai"}, {"desk", "net1"}),  # with its sub-department 浦东
        ({"department": "hq"}, {"desk", "net1", "net_lead"}),
        ({"skill": "network"}, {"net_lead", "net1"}),
        ({"skill": "network", "min_level": 3}, {"net_lead"}),
        ({"group": "network", "department": "hq_it"}, {"net_lead"}),
    ],
)
def test_users_are_filtered(as_user, company, query, expected):
    for username in ("admin", "desk"):
        found = as_user(username).get(USERS, query_string={**query, "per_page": 200}).json
        assert {u["username"] for u in found["items"]} == expected
        assert found["total"] == len(expected)


def test_an_admin_creates_a_person_with_everything_at_once(as_user, db_session, company):
    body = {
        "username": "zhaoliu",
        "password": "initial-pass-1",
        "role": "handler",
        "display_name": "赵六",
        "email": "zhaoliu@paidan.example",
        "phone": "13800000000",
        "department": "hq_it",
        "groups": ["network", "hardware"],
        "skills": [{"skill": "network", "level": 3}, {"skill": "ups", "level": 1}],
    }
    response = as_user("admin").post(USERS, json=body)

    assert response.status_code == 201, response.json
    created = response.json
    assert (created["display_name"], created["role"], created["kind"]) == (
        "赵六",
        "handler",
        "person",
    )
    assert created["department"]["code"] == "hq_it" and created["active"] is True
    assert {g["code"] for g in created["groups"]} == {"network", "hardware"}
    assert created["skills"] == [
        {"skill": "network", "name": "网络", "level": 3},
        {"skill": "ups", "name": "UPS", "level": 1},
    ]
    assert "password" not in created
    user = db_session.get(User, created["id"])
    assert (
        user.password_hash.startswith("$argon2id$") and "initial-pass-1" not in user.password_hash
    )
    [row] = audit(db_session, action="user.create", object_id="zhaoliu")
    assert row.actor == "admin" and row.source == "api" and row.before is None
    assert row.after["groups"] == ["hardware", "network"]
    assert row.after["skills"] == {"network": 3, "ups": 1}
    assert "password" not in str(row.after) and "argon2" not in str(row.after)


@pytest.mark.parametrize(
    ("body", "status", "named"),
    [
        ({"password": "short", "role": "handler"}, 400, "password"),
        ({"password": "long-enough-1", "role": "king"}, 400, "role"),
        ({"password": "long-enough-1"}, 400, "role"),
        ({"username": "system:x", "password": "long-enough-1", "role": "handler"}, 400, "username"),
        ({"username": "a b", "password": "long-enough-1", "role": "handler"}, 400, "username"),
        ({"password": "long-enough-1", "role": "handler", "groups": ["nope"]}, 400, "nope"),
        ({"password": "long-enough-1", "role": "handler", "department": "nowhere"}, 400, "nowhere"),
        (
            {
                "password": "long-enough-1",
                "role": "handler",
                "skills": [{"skill": "ghost", "level": 2}],
            },
            400,
            "ghost",
        ),
        (
            {
                "password": "long-enough-1",
                "role": "handler",
                "skills": [{"skill": "network", "level": 6}],
            },
            400,
            "skills",
        ),
        (
            {
                "password": "long-enough-1",
                "role": "handler",
                "skills": [{"skill": "network", "level": 2}, {"skill": "network", "level": 3}],
            },
            400,
            "skills",
        ),
        (
            {"password": "long-enough-1", "role": "handler", "display_name": "a\x00b"},
            400,
            "display_name",
        ),
        (
            {"password": "long-enough-1", "role": "handler", "display_name": "\ud800"},
            400,
            "display_name",
        ),
        ({"password": "long-enough-\ud800", "role": "handler"}, 400, "password"),
        ({"password": "long-enough-1", "role": "handler", "email": "not-an-email"}, 400, "email"),
        ({"password": "long-enough-1", "role": "handler", "is_admin": True}, 400, "is_admin"),
        ({"username": "alice", "password": "long-enough-1", "role": "handler"}, 409, "alice"),
    ],
)
def test_a_wrong_new_user_is_refused_naming_the_fault(
    as_user, db_session, company, body, status, named
):
    users, rows = count(db_session, User), count(db_session, AuditEntry)
    response = as_user("admin").post(USERS, json={"username": "zhaoliu", **body})
    assert_problem(response, status, named)
    assert (count(db_session, User), count(db_session, AuditEntry)) == (users, rows)


def count(db_session, model) -> int:
    return db_session.scalar(select(func.count()).select_from(model))


def test_a_role_change_is_audited_with_before_after_and_source(as_user, db_session):
    net1 = user_id(as_user, "net1")

    response = as_user("admin").patch(f"{USERS}/{net1}", json={"role": "reviewer"})

    assert response.status_code == 200 and response.json["role"] == "reviewer"
    [row] = audit(db_session, action="user.role_change")
    assert (row.actor, row.source, row.object_type, row.object_id) == (
        "admin",
        "api",
        "user",
        "net1",
    )
    assert (row.before, row.after) == ({"role": "handler"}, {"role": "reviewer"})
    assert as_user("net1").get(f"{USERS}/me").json["role"] == "reviewer"  # at once


def test_each_aspect_of_a_change_is_its_own_audit_row(as_user, db_session, company):
    net1 = user_id(as_user, "net1")
    body = {
        "display_name": "网络一号",
        "department": "hq_it",
        "groups": ["network", "service_desk"],
        "skills": [{"skill": "network", "level": 4}, {"skill": "printer", "level": 1}],
    }
    assert as_user("admin").patch(f"{USERS}/{net1}", json=body).status_code == 200

    rows = {row.action: row for row in audit(db_session, object_id="net1")}  # the latest of each
    assert rows["user.update"].before == {"display_name": "net1"}
    assert rows["user.update"].after == {"display_name": "网络一号"}
    assert rows["user.department_change"].before == {"department": "pudong"}
    assert rows["user.department_change"].after == {"department": "hq_it"}
    assert rows["user.groups_change"].before == {"groups": ["network"]}
    assert rows["user.groups_change"].after == {"groups": ["network", "service_desk"]}
    assert rows["user.skills_change"].before == {"skills": {"network": 2}}
    assert rows["user.skills_change"].after == {"skills": {"network": 4, "printer": 1}}
    assert "user.role_change" not in rows


def test_an_unchanged_value_leaves_no_audit_row(as_user, db_session):
    net1 = user_id(as_user, "net1")
    rows = count(db_session, AuditEntry)
    body = {"role": "handler", "groups": ["network"], "display_name": "net1"}
    assert as_user("admin").patch(f"{USERS}/{net1}", json=body).status_code == 200
    assert count(db_session, AuditEntry) == rows


def test_department_and_skills_can_be_cleared(as_user, company):
    net1 = user_id(as_user, "net1")
    cleared = as_user("admin").patch(
        f"{USERS}/{net1}", json={"department": None, "skills": [], "groups": []}
    )
    assert cleared.status_code == 200
    assert (cleared.json["department"], cleared.json["skills"], cleared.json["groups"]) == (
        None,
        [],
        [],
    )


def test_nobody_changes_their_own_role_or_deactivates_themselves(as_user, db_session):
    admin = user_id(as_user, "admin")
    assert_problem(as_user("admin").patch(f"{USERS}/{admin}", json={"role": "handler"}), 409)
    assert_problem(as_user("admin").post(f"{USERS}/{admin}/deactivate"), 409)
    assert db_session.get(User, admin).role == "admin"


def test_the_last_admin_stays_an_admin(as_user, client):
    issued = as_user("admin").post("/api/v1/api-tokens", json={"name": "hr", "role": "admin"})
    system_admin = TokenApi(client, issued.json["token"])
    admin = user_id(as_user, "admin")

    # a system account with the admin role is no admin a person can sign in as
    assert_problem(system_admin.patch(f"{USERS}/{admin}", json={"role": "handler"}), 409, "admin")
    assert_problem(system_admin.post(f"{USERS}/{admin}/deactivate"), 409, "admin")

    promoted = as_user("admin").patch(f"{USERS}/{user_id(as_user, 'desk')}", json={"role": "admin"})
    assert promoted.status_code == 200
    assert system_admin.patch(f"{USERS}/{admin}", json={"role": "handler"}).status_code == 200


def test_a_deactivated_account_keeps_its_record_and_loses_its_access(as_user, db_session):
    alice = user_id(as_user, "alice")

    response = as_user("admin").post(f"{USERS}/{alice}/deactivate")

    assert response.status_code == 200 and response.json["active"] is False
    assert_problem(as_user("alice").get(f"{USERS}/me"), 401)
    assert db_session.get(User, alice) is not None
    [row] = audit(db_session, action="user.deactivate")
    assert (row.object_id, row.before, row.after) == ("alice", {"active": True}, {"active": False})
    inactive = as_user("admin").get(USERS, query_string={"active": "false"}).json["items"]
    assert [u["username"] for u in inactive] == ["alice"]

    assert as_user("admin").post(f"{USERS}/{alice}/activate").json["active"] is True
    assert as_user("alice").get(f"{USERS}/me").status_code == 200
    assert audit(db_session, action="user.activate", object_id="alice")


def test_users_cannot_be_deleted(as_user):
    response = as_user("admin").delete(f"{USERS}/{user_id(as_user, 'bob')}")
    assert_problem(response, 405)


def test_an_unknown_user_is_404(as_user):
    assert_problem(as_user("admin").get(f"{USERS}/987654"), 404, "987654")
    assert_problem(as_user("admin").patch(f"{USERS}/987654", json={"role": "admin"}), 404)
    # beyond the id column's range: unknown, never a database error
    assert_problem(as_user("admin").get(f"{USERS}/{2**40}"), 404, str(2**40))
    assert_problem(as_user("admin").patch(f"{USERS}/{2**40}", json={"role": "admin"}), 404)


def test_a_change_that_fails_halfway_leaves_nothing(as_user, db_session):
    net1 = user_id(as_user, "net1")
    rows = count(db_session, AuditEntry)
    response = as_user("admin").patch(
        f"{USERS}/{net1}", json={"role": "reviewer", "groups": ["nope"]}
    )
    assert_problem(response, 400, "nope")
    assert db_session.get(User, net1).role == "handler"
    assert count(db_session, AuditEntry) == rows


# ---------------------------------------------------------------- groups


def test_groups_are_created_led_and_renamed_with_audit(as_user, db_session):
    admin = as_user("admin")
    created = admin.post(GROUPS, json={"code": "security", "name": "安全组", "lead": "net1"})
    assert created.status_code == 201, created.json
    assert created.json["lead"]["username"] == "net1" and created.json["members"] == []

    net1 = user_id(as_user, "net1")
    admin.patch(f"{USERS}/{net1}", json={"groups": ["network", "security"]})
    changed = admin.patch(
        f"{GROUPS}/{created.json['id']}", json={"name": "信息安全组", "lead": None}
    )

    assert changed.status_code == 200
    assert (changed.json["name"], changed.json["lead"]) == ("信息安全组", None)
    assert [m["username"] for m in changed.json["members"]] == ["net1"]
    [row] = audit(db_session, action="group.update", object_id="security")
    assert row.before == {"name": "安全组", "lead": "net1"}
    assert row.after == {"name": "信息安全组", "lead": None}
    assert audit(db_session, action="group.create", object_id="security")


@pytest.mark.parametrize(
    ("body", "status", "named"),
    [
        ({"code": "network", "name": "重复"}, 409, "network"),
        ({"code": "bad code", "name": "x"}, 400, "code"),
        ({"code": "ok", "name": ""}, 400, "name"),
        ({"code": "ok", "name": "x", "lead": "ghost"}, 400, "ghost"),
    ],
)
def test_a_wrong_group_is_refused_naming_the_fault(as_user, body, status, named):
    assert_problem(as_user("admin").post(GROUPS, json=body), status, named)


def test_a_group_code_is_fixed(as_user):
    group = as_user("admin").get(GROUPS, query_string={"q": "network"}).json["items"][0]
    response = as_user("admin").patch(f"{GROUPS}/{group['id']}", json={"code": "net"})
    problem = assert_problem(response, 400, "code")
    assert "code" in field_errors(problem)


def test_groups_list_with_lead_and_members(as_user):
    listed = as_user("desk").get(GROUPS).json
    assert listed["total"] == 5
    network = next(g for g in listed["items"] if g["code"] == "network")
    assert network["lead"]["username"] == "net_lead"
    assert {m["username"] for m in network["members"]} == {"net_lead", "net1"}
    assert [
        g["code"] for g in as_user("desk").get(GROUPS, query_string={"q": "网络"}).json["items"]
    ] == ["network"]


# ---------------------------------------------------------------- departments


def test_departments_form_a_tree(as_user, company):
    tree = as_user("desk").get(f"{DEPARTMENTS}/tree").json

    def shape(nodes):
        return {n["code"]: shape(n["children"]) for n in nodes}

    assert shape(tree) == {
        "hq": {"hq_it": {}, "shanghai": {"pudong": {}}},
        "shenzhen": {},
    }
    flat = as_user("desk").get(DEPARTMENTS, query_string={"parent": "hq"}).json
    assert {d["code"]: d["parent"] for d in flat["items"]} == {"hq_it": "hq", "shanghai": "hq"}
    assert flat["total"] == 2
    top = as_user("admin").get(DEPARTMENTS, query_string={"q": "总部"}).json["items"]
    assert [(d["code"], d["parent_id"], d["parent"]) for d in top] == [("hq", None, None)]


def test_a_department_moves_with_its_subtree_but_never_under_itself(as_user, db_session, company):
    admin = as_user("admin")
    departments = {d["code"]: d for d in admin.get(DEPARTMENTS).json["items"]}
    shanghai = departments["shanghai"]["id"]

    refused = admin.patch(f"{DEPARTMENTS}/{shanghai}", json={"parent": "pudong"})
    assert_problem(refused, 400, "shanghai", "pudong")
    assert_problem(admin.patch(f"{DEPARTMENTS}/{shanghai}", json={"parent": "shanghai"}), 400)

    moved = admin.patch(f"{DEPARTMENTS}/{shanghai}", json={"parent": "shenzhen", "name": "华东区"})
    assert moved.status_code == 200 and moved.json["parent"] == "shenzhen"
    names = {
        u["username"]
        for u in admin.get(USERS, query_string={"department": "shenzhen"}).json["items"]
    }
    assert names == {"hw1", "desk", "net1"}
    [row] = audit(db_session, action="department.update", object_id="shanghai")
    assert row.before == {"name": "上海分公司", "parent": "hq"}
    assert row.after == {"name": "华东区", "parent": "shenzhen"}


def test_a_wrong_department_is_refused_naming_the_fault(as_user, company):
    admin = as_user("admin")
    assert_problem(admin.post(DEPARTMENTS, json={"code": "hq", "name": "又一个"}), 409, "hq")
    assert_problem(
        admin.post(DEPARTMENTS, json={"code": "x", "name": "x", "parent": "nowhere"}),
        400,
        "nowhere",
    )
    assert_problem(admin.get(f"{DEPARTMENTS}/987654"), 404, "987654")


# ---------------------------------------------------------------- skills


def test_skills_are_created_renamed_and_listed(as_user, db_session, company):
    admin = as_user("admin")
    listed = as_user("desk").get(SKILLS).json
    assert [s["code"] for s in listed["items"]] == ["network", "printer", "ups"]
    ups = listed["items"][2]["id"]

    renamed = admin.patch(f"{SKILLS}/{ups}", json={"name": "不间断电源"})

    assert renamed.status_code == 200 and renamed.json == {
        "id": ups,
        "code": "ups",
        "name": "不间断电源",
    }
    [row] = audit(db_session, action="skill.update", object_id="ups")
    assert (row.before, row.after) == ({"name": "UPS"}, {"name": "不间断电源"})
    assert_problem(admin.post(SKILLS, json={"code": "ups", "name": "again"}), 409, "ups")
    assert_problem(admin.get(f"{SKILLS}/987654"), 404, "987654")


# ---------------------------------------------------------------- the OpenAPI document


def test_every_organisation_endpoint_is_documented_with_schemas_examples_and_problems(client):
    spec = client.get("/api/v1/openapi.json").json
    prefixes = (
        "/api/v1/users",
        "/api/v1/groups",
        "/api/v1/departments",
        "/api/v1/skills",
        "/api/v1/api-tokens",
        "/api/v1/auth",
        "/api/v1/audit",
    )
    operations = [
        (path, method, operation)
        for path, item in spec["paths"].items()
        if path.startswith(prefixes)
        for method, operation in item.items()
        if method in {"get", "post", "patch", "put", "delete"}
    ]
    assert len(operations) >= 30
    for path, method, operation in operations:
        where = f"{method.upper()} {path}"
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if method in {"post", "patch", "put"} and body is not None:
            assert body.get("schema") and body.get("example"), where
        success = [code for code in operation["responses"] if code.startswith("2")]
        assert len(success) == 1, where
        answer = operation["responses"][success[0]]
        if success[0] != "204":
            content = answer["content"]["application/json"]
            assert content.get("schema") and content.get("example"), where
        assert "401" in operation["responses"], where
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                assert "application/problem+json" in response["content"], where


# ---------------------------------------------------------------- the demo company


def test_the_demo_company_places_everyone_in_its_department_tree(new_database):
    from flask_migrate import upgrade

    from app import create_app
    from app.auth.access import ticket_condition
    from app.auth.org_service import department_tree
    from app.demo import seed_demo
    from app.extensions import db
    from app.tickets.models import Ticket

    app = create_app(
        {"DATABASE_URL": new_database(), "ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 64}
    )
    with app.app_context():
        upgrade()
        seed_demo(app)
        db.session.commit()

        [top] = department_tree(db_session=db.session)
        assert top["name"] == "总部"
        assert {d["name"] for d in top["children"]} == {
            "行政部",
            "财务部",
            "IT 部",
            "上海分公司",
            "深圳分公司",
        }
        users = {u.username: u for u in db.session.scalars(select(User))}
        assert all(u.department is not None for u in users.values())
        assert users["zhangwei"].department.code == "hq"
        assert users["liuyang"].department.name == "上海分公司"
        for user in users.values():
            if user.role == "handler" and user.username != "chenjing":
                assert user.skills and all(1 <= s.level <= 5 for s in user.skills)
        assert {s.skill.name: s.level for s in users["liqiang"].skills} == {"网络": 5, "服务器": 3}

        tickets = db.session.scalars(select(Ticket)).all()
        assert all(t.department_id is not None for t in tickets)
        zhangwei_sees = db.session.scalars(
            select(Ticket.title).where(ticket_condition(db.session, users["zhangwei"]))
        ).all()
        assert len(zhangwei_sees) == len(tickets) == 9
        liuyang_sees = set(
            db.session.scalars(
                select(Ticket.title).where(ticket_condition(db.session, users["liuyang"]))
            )
        )
        assert {t.title for t in tickets if t.requester.username == "linna"} <= liuyang_sees
        leads = db.session.scalars(
            select(AuditEntry.object_id).where(AuditEntry.action == "group.update")
        ).all()
        assert sorted(leads) == ["facilities", "hardware", "network", "service_desk", "spare_parts"]
        db.session.remove()
        db.engine.dispose()
