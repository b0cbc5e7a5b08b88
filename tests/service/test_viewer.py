"""The web viewer (/ui) over real HTTP through the app, on SQLite and PostgreSQL.

A run committed through the real iteration code (scripted replies: an accepted task, its
near-duplicate, a keyword rejection), two dataset versions exported over REST and a training
run record are rendered page by page; the session cookie, CSRF and read-only keys are checked
on every state-changing form. The browser tests (tests/browser/) drive the same pages in
Chromium.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from markdown_it import MarkdownIt
from sqlalchemy import update

from service.errors import InvalidInput
from service.export.card import code_span
from service.seed_files import parse_seed_file
from service.storage.iterations import commit_iteration
from service.storage.models import SeedSet
from service.storage.runs import release_lease
from service.storage.seeds import import_seed_set
from service.viewer import session as sessions
from service.viewer.highlight import Piece, shared_words
from tests.service.api_client import api_harness
from tests.service.scripted_run import scripted_pipeline
from tests.service.viewer_data import Seeded, run_config, seed_viewer_data

VENDOR = Path(__file__).resolve().parents[2] / "service" / "viewer" / "static" / "vendor"


@pytest.fixture
def seeded(db_url: str, tmp_path: Path) -> Iterator[Seeded]:
    with api_harness(db_url, tmp_path) as api:
        yield seed_viewer_data(api, tmp_path)


def login_form_token(client: TestClient) -> str:
    """Open the login page as a browser does; the form's CSRF token (its cookie is kept)."""
    page = client.get("/ui/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None, page.text[:3000]
    return token.group(1)


def login(client: TestClient, key: str) -> str:
    """Log in with `key`; returns the session's CSRF token (from a page's logout form)."""
    form = login_form_token(client)
    answer = client.post("/ui/login", data={"key": key, "csrf": form}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    page = client.get("/ui/runs")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None, (page.status_code, page.text[:3000])
    return token.group(1)


def test_login_sets_a_strict_httponly_cookie_and_pages_need_it(seeded: Seeded) -> None:
    client = seeded.api.client
    away = client.get("/ui/tasks?status=rejected", follow_redirects=False)
    assert away.status_code == 303
    assert away.headers["location"] == "/ui/login?next=%2Fui%2Ftasks%3Fstatus%3Drejected"
    form = login_form_token(client)
    wrong = client.post(
        "/ui/login", data={"key": "ifk_not-a-key", "csrf": form}, follow_redirects=False
    )
    assert wrong.status_code == 401 and "Unknown or revoked key" in wrong.text
    answer = client.post(
        "/ui/login",
        data={"key": seeded.api.keys["read"], "next": "/ui/tasks?status=rejected", "csrf": form},
        follow_redirects=False,
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/tasks?status=rejected"
    (cookie,) = [
        c for c in answer.headers.get_list("set-cookie") if c.startswith(f"{sessions.COOKIE}=")
    ]
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/ui"):
        assert attribute.lower() in cookie.lower()
    assert seeded.api.keys["read"] not in cookie  # the key's hash, signed; never the key
    # No open redirect: another site's address after login lands on our runs page.
    elsewhere = client.post(
        "/ui/login",
        data={
            "key": seeded.api.keys["read"],
            "next": "https://evil.example/",
            "csrf": login_form_token(client),
        },
        follow_redirects=False,
    )
    assert elsewhere.headers["location"] == "/ui/runs"
    # A forged or tampered cookie is no session.
    value = client.cookies.get(sessions.COOKIE)
    assert value is not None
    client.cookies.clear()
    client.cookies.set(sessions.COOKIE, value[:-2] + "xx")
    forged = client.get("/ui/runs", follow_redirects=False)
    assert forged.status_code == 303, forged.text


def test_login_form_needs_its_own_pre_session_token(seeded: Seeded) -> None:
    """Login CSRF: a foreign page posting a valid key (the attacker's) with no token, another
    browser's token, a token without its cookie or a forged one gets no session."""
    client = seeded.api.client
    key = seeded.api.keys["read"]

    def refused(data: dict[str, str]) -> None:
        answer = client.post("/ui/login", data={"key": key, **data}, follow_redirects=False)
        assert answer.status_code == 403, answer.text[:500]
        assert "log in again" in answer.text
        assert not any(
            c.startswith(f"{sessions.COOKIE}=") for c in answer.headers.get_list("set-cookie")
        )
        assert client.cookies.get(sessions.COOKIE) is None

    refused({})  # no cookie, no token: a cross-site form
    other = TestClient(client.app, base_url=str(client.base_url))
    foreign = login_form_token(other)  # the attacker's own browser's token
    refused({"csrf": foreign})
    mine = login_form_token(client)
    assert mine != foreign
    refused({"csrf": mine[:-2] + ("AA" if not mine.endswith("AA") else "BB")})
    nonce = client.cookies.get(sessions.LOGIN_COOKIE)
    assert nonce is not None
    # The pre-session cookie is HttpOnly, SameSite=Strict and scoped to the login form.
    cookie = client.get("/ui/login").headers["set-cookie"].lower()
    for attribute in ("httponly", "samesite=strict", "path=/ui/login"):
        assert attribute in cookie
    assert client.cookies.get(sessions.LOGIN_COOKIE) == nonce  # kept: two tabs stay valid
    client.cookies.delete(sessions.LOGIN_COOKIE)
    refused({"csrf": mine})  # the token without its cookie
    # A failed login shows a fresh form that works.
    form = login_form_token(client)
    answer = client.post("/ui/login", data={"key": key, "csrf": form}, follow_redirects=False)
    assert answer.status_code == 303
    assert client.cookies.get(sessions.COOKIE) is not None
    assert client.cookies.get(sessions.LOGIN_COOKIE) is None  # spent with the login


def test_session_tokens() -> None:
    secret = b"s" * 32
    cookie = sessions.issue(secret, "ab" * 32, lifetime_s=60, now=1000)
    session = sessions.read(secret, cookie, now=1030)
    assert session is not None and session.key_hash == "ab" * 32
    assert sessions.read(secret, cookie, now=1061) is None  # expired
    assert sessions.read(b"t" * 32, cookie, now=1030) is None  # another secret
    assert sessions.read(secret, cookie.replace("ab", "cd", 1), now=1030) is None
    assert sessions.csrf_matches(session, session.csrf)
    assert not sessions.csrf_matches(session, None)
    other = sessions.read(
        secret, sessions.issue(secret, "ab" * 32, lifetime_s=61, now=1000), now=1030
    )
    assert other is not None and other.csrf != session.csrf  # one token per session
    assert session.issued_ms == 1_000_000
    assert not session.ended_by(None)
    assert session.ended_by(datetime.fromtimestamp(1000, UTC))  # a logout at the issue time
    assert not session.ended_by(datetime.fromtimestamp(999.999, UTC))
    _, key_hash, issued, expires, mac = cookie.split(".")
    later = ".".join(("v2", key_hash, str(int(issued) + 5000), expires, mac))
    assert sessions.read(secret, later, now=1030) is None  # the issue time is signed too
    assert sessions.read(secret, "v1." + ".".join((key_hash, expires, mac)), now=1030) is None


def test_every_page_renders(seeded: Seeded) -> None:
    client = seeded.api.client
    login(client, seeded.api.keys["write"])
    pages = {
        "/ui/runs": [f'href="/ui/runs/{seeded.run_id}"', "Tokens/s", "ETA"],
        f"/ui/runs/{seeded.run_id}": [
            "Quality report",
            "Rejections by rule",
            "near_duplicate",
            "Collapse radar per iteration",
            "data-chart=",
            ">Pause</button>",
            ">Cancel</button>",
        ],
        f"/ui/runs/{seeded.run_id}/live": ["Progress", ">Pause</button>"],
        f"/ui/tasks?run_id={seeded.run_id}": [
            f'href="/ui/tasks/{seeded.duplicate_id}"',
            "Instruction contains",
        ],
        f"/ui/tasks/{seeded.accepted_id}": ["Generation calls", "Rendered prompt", "Few-shot"],
        "/ui/datasets": ['href="/ui/datasets/demo"'],
        "/ui/datasets/demo": ["Dataset card", "train.messages.jsonl", f"run #{seeded.run_id}"],
        "/ui/datasets/demo?version=1": ["v1", "Lineage"],
        "/ui/training": ["demo@2"],
        f"/ui/training/{seeded.training_id}": ["Validation curve", "1.2750", "demo@2"],
        "/ui/static/app.js?v=1": ["uPlot"],
    }
    for url, needles in pages.items():
        page = client.get(url)
        assert page.status_code == 200, (url, page.text[:500])
        for needle in needles:
            assert needle in page.text, (url, needle)
        if url.startswith("/ui/static"):
            continue
        # The pages keep to their own CSP: no inline script, handler or javascript: link.
        assert page.headers["content-security-policy"].startswith("default-src 'self'"), url
        assert page.headers["x-frame-options"] == "DENY", url
        assert re.search(r"<script(?![^>]*\bsrc=)|\son[a-z]+=|javascript:", page.text) is None, url


def test_tasks_filter_search_and_page(seeded: Seeded) -> None:
    client = seeded.api.client
    login(client, seeded.api.keys["read"])

    def ids(url: str) -> list[int]:
        page = client.get(url)
        assert page.status_code == 200, page.text[:400]
        return [
            int(i) for i in re.findall(r'<a href="/ui/tasks/(\d+)" class="task-id">', page.text)
        ]

    rest = client.get("/v1/tasks?reject_rule=near_duplicate", headers=seeded.api.headers("read"))
    duplicates = [t["id"] for t in rest.json()["items"]]
    assert seeded.duplicate_id in duplicates
    assert ids("/ui/tasks?reject_rule=near_duplicate") == duplicates
    run = seeded.run_id
    assert seeded.accepted_id in ids(f"/ui/tasks?run_id={run}&status=accepted&origin=machine")
    assert seeded.duplicate_id not in ids(f"/ui/tasks?run_id={run}&status=accepted")
    # Search is a case-insensitive substring; LIKE's own wildcards are literal.
    found = ids(f"/ui/tasks?run_id={run}&q=OCEAN+AT")
    assert set(found) == {seeded.accepted_id, seeded.duplicate_id}
    assert ids(f"/ui/tasks?run_id={run}&q=%25") == []
    assert ids(f"/ui/tasks?run_id={run}&q=_") == []
    assert ids("/ui/tasks?type=generation&origin=machine&status=accepted") != []
    # Empty form fields are no filter; the cursor pages through everything once.
    seen: list[int] = []
    url: str | None = "/ui/tasks?q=&status=&limit=50"
    while url:
        page = client.get(url)
        seen += [
            int(i) for i in re.findall(r'<a href="/ui/tasks/(\d+)" class="task-id">', page.text)
        ]
        nxt = re.search(r'<a href="([^"]+)" rel="next">', page.text)
        url = nxt.group(1).replace("&amp;", "&") if nxt else None
    assert seen == sorted(set(seen)) and len(seen) > 50  # the seeds and the run's tasks
    bad = client.get("/ui/tasks?min_score=abc&scorer=x")
    assert bad.status_code == 422 and "min_score" in bad.text
    assert client.get("/ui/tasks?type=poem").status_code == 422


def test_the_rest_api_has_the_same_search_and_score_range(seeded: Seeded) -> None:
    client, headers = seeded.api.client, seeded.api.headers("read")
    found = client.get(f"/v1/tasks?run_id={seeded.run_id}&q=ocean", headers=headers).json()
    assert {t["id"] for t in found["items"]} == {seeded.accepted_id, seeded.duplicate_id}
    # A range needs its scorer; an upper bound below every score finds nothing.
    assert client.get("/v1/tasks?max_score=1", headers=headers).status_code == 422
    none = client.get("/v1/tasks?scorer=heuristic_quality&max_score=-1e9", headers=headers)
    assert none.status_code == 200 and none.json()["items"] == []


def test_rejected_task_shows_its_nearest_side_by_side(seeded: Seeded) -> None:
    client = seeded.api.client
    login(client, seeded.api.keys["read"])
    page = client.get(f"/ui/tasks/{seeded.duplicate_id}").text
    assert '<code id="reject-rule">near_duplicate</code>' in page
    assert f'href="/ui/tasks/{seeded.accepted_id}" id="nearest-link"' in page
    nearest = re.search(r'<p class="compare" id="nearest-text">(.*?)</p>', page, re.S)
    assert nearest is not None
    assert re.findall(r"<mark>(.*?)</mark>", nearest.group(1)) == [
        "Write", "a", "short", "poem", "about", "the", "ocean", "at", "night",
    ]  # fmt: skip


def test_shared_words_mark_one_common_subsequence() -> None:
    a, b = shared_words("Translate it: the cat sat.", "The cat, it sat — translate!")
    assert "".join(p.text for p in a) == "Translate it: the cat sat."
    assert "".join(p.text for p in b) == "The cat, it sat — translate!"
    marked = [p.text.lower() for p in a if p.shared]
    assert marked == [p.text.lower() for p in b if p.shared]  # the same tokens, in order
    assert len(marked) == 3  # LCS of (translate it the cat sat) and (the cat it sat translate)
    # Unspaced scripts: one token per character, as the near-duplicate rule counts them.
    zh_a, zh_b = shared_words("把这句话翻译成英文", "把这段话翻译成法文")
    assert [p.text for p in zh_a if p.shared] == ["把", "这", "话", "翻", "译", "成", "文"]
    assert "".join(p.text for p in zh_b) == "把这段话翻译成法文"
    assert shared_words("", "abc") == ([], [type(a[0])("abc", False)])


def test_read_key_sees_no_buttons_and_cannot_act(seeded: Seeded) -> None:
    client = seeded.api.client
    csrf = login(client, seeded.api.keys["read"])
    page = client.get(f"/ui/runs/{seeded.run_id}").text
    assert "<button" not in page.split('id="live"')[1].split("</section>")[0]
    assert "Read-only key" in page
    refused = client.post(f"/ui/runs/{seeded.run_id}/pause", data={"csrf": csrf})
    assert refused.status_code == 403 and "write" in refused.text
    status = client.get(f"/v1/runs/{seeded.run_id}", headers=seeded.api.headers("read"))
    assert status.json()["status"] == "running"


def test_the_report_refreshes_while_the_run_works(seeded: Seeded) -> None:
    client, run_id = seeded.api.client, seeded.run_id
    login(client, seeded.api.keys["read"])
    poll = f'hx-get="/ui/runs/{run_id}/report" hx-trigger="every 5s" hx-swap="outerHTML"'
    assert poll in client.get(f"/ui/runs/{run_id}").text

    def yield_chart(fragment: str) -> dict[str, object]:
        found = re.search(r"data-chart='([^']*\"id\": \"yield\"[^']*)'", fragment)
        assert found is not None, fragment[:2000]
        return json.loads(html.unescape(found.group(1)))  # type: ignore[no-any-return]

    before = client.get(f"/ui/runs/{run_id}/report")
    assert before.status_code == 200 and before.text.lstrip().startswith('<section id="report"')
    assert poll in before.text and yield_chart(before.text)["x"] == [1]
    # The worker commits a second iteration: the next poll shows it.
    run, pipeline = scripted_pipeline(seeded.api.database, run_id, run_config())
    outcome = pipeline.step(2)
    with seeded.api.database.transaction() as s:
        commit_iteration(s, run=run, owner="me", lease_seconds=60, outcome=outcome)
    after = client.get(f"/ui/runs/{run_id}/report").text
    assert yield_chart(after)["x"] == [1, 2]
    assert after != before.text
    # A finished run's report is final: the section stops polling.
    with seeded.api.database.transaction() as s:
        release_lease(s, run_id=run_id, owner="me", status="completed")
    final = client.get(f"/ui/runs/{run_id}/report").text
    assert "hx-get" not in final and "(updates live)" not in final
    assert "hx-get" not in client.get(f"/ui/runs/{run_id}").text.split('id="report"')[1]


def test_pause_and_resume_need_this_sessions_csrf_token(seeded: Seeded) -> None:
    client = seeded.api.client
    csrf = login(client, seeded.api.keys["write"])
    url = f"/ui/runs/{seeded.run_id}"
    assert client.post(f"{url}/pause").status_code == 403  # no token
    tampered = csrf[:-1] + ("B" if csrf.endswith("A") else "A")
    assert client.post(f"{url}/pause", data={"csrf": tampered}).status_code == 403
    paused = client.post(f"{url}/pause", data={"csrf": csrf}, follow_redirects=False)
    assert paused.status_code == 303 and paused.headers["location"] == url
    page = client.get(url).text
    assert "s-paused" in page and ">Resume</button>" in page and ">Pause</button>" not in page
    again = client.post(f"{url}/pause", data={"csrf": csrf})
    assert again.status_code == 409 and "paused" in again.text  # the API's conflict, as HTML
    assert client.post(f"{url}/resume", data={"csrf": csrf}).status_code == 200
    assert "s-queued" in client.get(url).text
    assert client.post(f"{url}/explode", data={"csrf": csrf}).status_code == 422
    # Logging out needs the token too, and ends the session.
    assert client.post("/ui/logout").status_code == 403
    client.post("/ui/logout", data={"csrf": csrf})
    assert client.get(url, follow_redirects=False).status_code == 303


def test_revoked_key_ends_its_sessions(db_url: str, tmp_path: Path) -> None:
    with api_harness(db_url, tmp_path, api_key_cache_seconds=0) as api:
        login(api.client, api.keys["read"])
        from service.storage.keys import hash_key
        from service.storage.models import ApiKey, utcnow

        with api.database.transaction() as s:
            key = s.query(ApiKey).filter(ApiKey.key_hash == hash_key(api.keys["read"])).one()
            key.revoked_at = utcnow()
        assert api.client.get("/ui/runs", follow_redirects=False).status_code == 303


def test_dataset_diff_by_change_and_type(seeded: Seeded) -> None:
    client = seeded.api.client
    login(client, seeded.api.keys["read"])
    diff = client.get("/v1/datasets/demo/diff?from=1&to=2", headers=seeded.api.headers()).json()
    assert seeded.accepted_id in diff["added"] and diff["removed"] == []
    assert diff["changed_total"] > 0  # another split seed moves some seeds between splits
    v1 = client.get("/v1/datasets/demo/versions/1", headers=seeded.api.headers()).json()
    assert diff["changed_total"] + diff["unchanged_total"] == v1["counts"]["tasks"]
    by_type = diff["by_type"]
    assert sum(c["added"] for c in by_type.values()) == diff["added_total"]
    assert sum(c["changed"] for c in by_type.values()) == diff["changed_total"]
    page = client.get("/ui/datasets/demo/diff?from=1&to=2").text
    assert f"+{diff['added_total']}" in page and f"~{diff['changed_total']}" in page
    added = page.split('id="h-add"')[1].split("</section>")[0]
    assert f'href="/ui/tasks/{seeded.accepted_id}"' in added
    assert client.get("/ui/datasets/demo/diff?from=1&to=9").status_code == 404


def test_downloads_with_the_session(seeded: Seeded) -> None:
    client = seeded.api.client
    login(client, seeded.api.keys["read"])
    url = "/ui/datasets/demo/versions/2/files/train.messages.jsonl"
    whole = client.get(url)
    assert whole.status_code == 200 and whole.headers["etag"]
    assert client.get(url, headers={"Range": "bytes=0-9"}).content == whole.content[:10]
    rest = client.get("/v1/datasets/demo/versions/2/files/train.messages.jsonl",
                      headers=seeded.api.headers("read"))  # fmt: skip
    assert rest.content == whole.content
    assert client.get("/ui/datasets/demo/versions/2/files/nope.txt").status_code == 404


def test_vendored_assets_are_the_pinned_files() -> None:
    table = (VENDOR / "README.md").read_text()
    pinned = dict(re.findall(r"^\| (\S+) \|.*\| ([0-9a-f]{64}) \|$", table, re.M))
    assert set(pinned) == {"htmx.min.js", "uPlot.iife.min.js", "uPlot.min.css"}
    for name, digest in pinned.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
    assert (VENDOR / "LICENSE.htmx").exists() and (VENDOR / "LICENSE.uplot").exists()


def test_assets_are_addressed_by_content_and_cached(db_url: str, tmp_path: Path) -> None:
    with api_harness(db_url, tmp_path) as api:
        page = api.client.get("/ui/login").text
        css = re.search(r'href="(/ui/static/app\.css\?v=[0-9a-f]{12})"', page)
        assert css is not None
        digest = hashlib.sha256((VENDOR.parent / "app.css").read_bytes()).hexdigest()[:12]
        assert css.group(1).endswith(digest)
        cached = api.client.get(css.group(1))
        assert cached.status_code == 200
        assert cached.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert "immutable" not in api.client.get("/ui/static/app.css").headers.get(
            "cache-control", ""
        )
        assert "uPlot" not in page  # chart code only on the pages with charts


HUGE = "99999999999999999999999"  # past any database integer: must be refused, not queried


def test_bad_ids_and_params_are_html_404_or_422_never_500(seeded: Seeded) -> None:
    client = seeded.api.client
    csrf = login(client, seeded.api.keys["write"])
    run, task, training = seeded.run_id, seeded.accepted_id, seeded.training_id
    gets = {
        **{
            f"/ui/runs/{bad}{tail}": 422
            for bad in (HUGE, "-1", "0", "x")
            for tail in ("", "/live", "/report")
        },
        **{f"/ui/tasks/{bad}": 422 for bad in (HUGE, "-1", "0", "1.5", "x")},
        **{f"/ui/training/{bad}": 422 for bad in (HUGE, "-1", "0")},
        f"/ui/datasets/demo/versions/{HUGE}/files/train.messages.jsonl": 422,
        "/ui/datasets/demo/versions/0/files/train.messages.jsonl": 422,
        "/ui/datasets/demo/versions/2/files/..%2F..%2Fmanifest.json": 404,
        "/ui/datasets/%3Cscript%3E": 422,
        f"/ui/datasets/demo?version={HUGE}": 422,
        f"/ui/datasets/demo/diff?from=1&to={HUGE}": 422,
        "/ui/datasets/demo/diff?from=2&to=1": 200,
        f"/ui/runs/{2_147_483_647}": 404,
        f"/ui/tasks/{2_147_483_647}": 404,
        f"/ui/training/{2_147_483_647}": 404,
        f"/ui/tasks?run_id={HUGE}": 422,
        "/ui/tasks?limit=-1": 422,
        f"/ui/tasks?limit={HUGE}": 422,
        "/ui/tasks?cursor=bogus": 422,
        "/ui/tasks?cursor=%ED%A0%80": 422,
        "/ui/tasks?min_score=nan": 422,
        "/ui/tasks?min_score=1&max_score=0": 422,
        "/ui/tasks?q=" + "a" * 10_000: 422,
        "/ui/runs?limit=-5": 422,
        "/ui/runs?cursor=bogus": 422,
        "/ui/no/such/page": 404,
        "/ui/%3Cscript%3Ealert(1)%3C/script%3E": 404,
    }
    for url, status in gets.items():
        page = client.get(url, follow_redirects=False)
        assert page.status_code == status, (url, page.status_code, page.text[:300])
        assert page.headers["content-type"].startswith("text/html"), url
        assert "<script>alert" not in page.text, url
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"], url
    posts = {f"/ui/runs/{HUGE}/pause": 422, "/ui/runs/0/pause": 422, f"/ui/runs/{run}/explode": 422}
    for url, status in posts.items():
        answer = client.post(url, data={"csrf": csrf}, follow_redirects=False)
        assert answer.status_code == status, (url, answer.status_code, answer.text[:300])
    assert client.get(f"/ui/tasks/{task}").status_code == 200
    assert client.get(f"/ui/training/{training}").status_code == 200


# Names an older version stored (its CLI took any set name), each trying to leave its code span.
HOSTILE_NAMES = [
    "plain",
    "a` ![t](http://127.0.0.1:9/track.png) [login](https://evil.example) `b",
    "``x <https://evil.example/auto>",
    "x`",
    "`",
    "line1\n\n![t](http://127.0.0.1:9/t.png)",
    '<img src=x onerror="alert(1)"><script>alert(2)</script>',
    "\u202eevil 中文 😀",
]


def _md_escaped(text: str) -> str:
    """`text` as markdown-it escapes it (& < > and double quotes; not single quotes)."""
    return html.escape(text, quote=False).replace('"', "&quot;")


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_code_span_holds_any_name(name: str) -> None:
    rendered = MarkdownIt("commonmark").render(f"- seed set {code_span(name)} (sha256 `ab`)")
    flat = " ".join(name.splitlines()) or " "
    assert rendered == (
        f"<ul>\n<li>seed set <code>{_md_escaped(flat)}</code> (sha256 <code>ab</code>)"
        "</li>\n</ul>\n"
    )


def test_dataset_card_shows_names_as_text_never_images_or_links(
    db_url: str, tmp_path: Path
) -> None:
    def seeds(n: int) -> bytes:
        return b"".join(
            json.dumps({"name": f"s{n}_{i}", "instruction": f"Name colour {i} of set {n}.",
                        "instances": [{"input": "", "output": "blue"}],
                        "is_classification": False}).encode() + b"\n"
            for i in range(3)
        )  # fmt: skip

    with api_harness(db_url, tmp_path) as api:
        # Set names are now checked on the way in (`service.storage.names`), but databases from
        # before that rule hold any name the CLI took: store them as such an old version did.
        names = HOSTILE_NAMES[1:3] + HOSTILE_NAMES[5:7]
        with api.database.transaction() as session:
            for n, name in enumerate(names):
                with pytest.raises(InvalidInput):
                    import_seed_set(session, name=name, seed_file=parse_seed_file(seeds(n)))
                import_seed_set(session, name=f"legacy{n}", seed_file=parse_seed_file(seeds(n)))
                session.execute(
                    update(SeedSet).where(SeedSet.name == f"legacy{n}").values(name=name)
                )
        made = api.client.post(
            "/v1/datasets/hostile/versions?wait=true",
            json={"seed_sets": names, "include_seeds": True},
            headers=api.headers("write"),
        )
        assert made.status_code in (200, 201), made.text
        login(api.client, api.keys["read"])
        page = api.client.get("/ui/datasets/hostile")
        assert page.status_code == 200, page.text[:500]
        card = page.text.split('class="markdown">', 1)[1].split("</article>", 1)[0]
        assert "<img" not in card and "<a " not in card and "<script" not in card, card
        for name in names:
            flat = " ".join(name.splitlines())
            assert f"<code>{_md_escaped(flat)}</code>" in card, (name, card)
        # A card written before names were quoted: its Markdown images and links stay text.
        readme = next((tmp_path / "datasets" / "hostile").rglob("README.md"))
        readme.write_text(
            readme.read_text() + "\n![t](http://127.0.0.1:9/t.png) [login](https://evil.example)"
            " <https://evil.example/auto> <img src=x onerror=alert(1)>\n"
        )
        card = api.client.get("/ui/datasets/hostile").text.split('class="markdown">', 1)[1]
        card = card.split("</article>", 1)[0]
        assert "<img" not in card and "<a " not in card and "evil.example" in card, card


def test_logout_ends_the_session_on_the_server_not_only_in_the_browser(seeded: Seeded) -> None:
    client = seeded.api.client
    url = f"/ui/runs/{seeded.run_id}"
    csrf = login(client, seeded.api.keys["write"])
    kept = client.cookies.get(sessions.COOKIE)  # a copy: another tab's, or a stolen one
    assert kept is not None
    assert client.post("/ui/logout", data={"csrf": "x" * 43}).status_code == 403
    assert client.get(url, follow_redirects=False).status_code == 200  # still logged in
    out = client.post("/ui/logout", data={"csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/ui/login"
    client.cookies.clear()
    client.cookies.set(sessions.COOKIE, kept)
    assert client.get(url, follow_redirects=False).status_code == 303
    acted = client.post(f"{url}/pause", data={"csrf": csrf}, follow_redirects=False)
    assert acted.status_code == 303 and acted.headers["location"].startswith("/ui/login")
    status = client.get(f"/v1/runs/{seeded.run_id}", headers=seeded.api.headers("read"))
    assert status.json()["status"] != "paused"
    # A new login after the logout is a new session; another key's sessions are untouched.
    client.cookies.clear()
    login(client, seeded.api.keys["read"])
    reader = client.cookies.get(sessions.COOKIE)
    client.cookies.clear()
    fresh = login(client, seeded.api.keys["write"])
    paused = client.post(f"{url}/pause", data={"csrf": fresh}, follow_redirects=False)
    assert paused.status_code == 303 and paused.headers["location"] == url
    client.post("/ui/logout", data={"csrf": fresh})
    client.cookies.clear()
    client.cookies.set(sessions.COOKIE, reader or "")
    assert client.get(url, follow_redirects=False).status_code == 200


def test_shared_words_of_long_texts_cost_bounded_cpu() -> None:
    words = [f"w{i % 97}" for i in range(3000)]
    a, b = " ".join(words), " ".join(reversed(words))
    started = time.process_time()
    left, right = shared_words(a, b)
    assert time.process_time() - started < 1.0  # unbounded: ~9 CPU-s for 3000 x 3000
    assert left == [Piece(a, False)] and right == [Piece(b, False)]
    short_left, _ = shared_words(" ".join(words[:900]), " ".join(words[:1000]))
    assert "".join(p.text for p in short_left) == " ".join(words[:900])
    assert sum(p.shared for p in short_left) == 900  # within MAX_CELLS: still marked
