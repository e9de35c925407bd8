"""Browser sessions: sign-in page, CSRF on everything a session cookie would authorise."""

import re

from tests.conftest import PASSWORD


def csrf_from(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def sign_in(client, username="desk", password=PASSWORD, next_url=None):
    token = csrf_from(client.get("/login").get_data(as_text=True))
    url = "/login" + (f"?next={next_url}" if next_url else "")
    response = client.post(
        url, data={"username": username, "password": password, "csrf_token": token}
    )
    return response, token


def test_sign_in_page_is_chinese_first_and_carries_a_csrf_token(client):
    page = client.get("/login").get_data(as_text=True)
    assert "用户名" in page and "Username" not in page and csrf_from(page)


def test_the_language_switch_turns_the_pages_english_and_back(client):
    switched = client.get("/lang/en?next=/login")
    assert switched.status_code == 302 and switched.headers["Location"].endswith("/login")
    page = client.get("/login").get_data(as_text=True)
    assert "Username" in page and "用户名" not in page and 'lang="en"' in page
    client.get("/lang/zh")
    assert "用户名" in client.get("/login").get_data(as_text=True)


def test_an_english_browser_gets_english_pages_until_it_chooses(client):
    english = {"Accept-Language": "en-US,en;q=0.9"}
    assert "Username" in client.get("/login", headers=english).get_data(as_text=True)
    client.get("/lang/zh")
    assert "用户名" in client.get("/login", headers=english).get_data(as_text=True)


def test_sign_in_without_the_csrf_token_is_refused(client):
    client.get("/login")
    response = client.post("/login", data={"username": "desk", "password": PASSWORD})
    assert response.status_code == 403
    assert "CSRF" in response.get_json()["detail"]


def test_wrong_password_shows_the_form_again(client):
    response, _ = sign_in(client, password="wrong-password")
    assert response.status_code == 401
    assert "用户名或密码不正确" in response.get_data(as_text=True)


def test_a_session_reads_the_api_and_writes_only_with_the_csrf_header(client):
    response, token = sign_in(client)
    assert response.status_code == 302
    assert client.get("/api/v1/tasks").status_code == 200
    body = {"title": "会话创建的工单", "priority": "P3", "region": "beijing"}
    refused = client.post("/api/v1/tickets", json=body)
    assert refused.status_code == 403 and "CSRF" in refused.get_json()["detail_en"]
    created = client.post("/api/v1/tickets", json=body, headers={"X-CSRF-Token": token})
    assert created.status_code == 201


def test_sign_in_never_redirects_to_another_site(client):
    response, _ = sign_in(client, next_url="https://evil.example/phish")
    assert response.status_code == 302
    assert response.headers["Location"] in {"/", "http://localhost/"}


def test_sign_out_needs_the_csrf_token_and_ends_the_session(client):
    _, token = sign_in(client)
    assert client.post("/logout").status_code == 403
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/api/v1/tasks").status_code == 401
