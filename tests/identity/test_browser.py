"""The loopback listener of `login --browser`: 127.0.0.1 only, answers matched by state."""

from __future__ import annotations

import threading

import httpx

from patwarden.identity.browser import LoopbackReceiver


def _wait_in_thread(
    receiver: LoopbackReceiver, state: str
) -> tuple[threading.Thread, list[object]]:
    got: list[object] = []
    thread = threading.Thread(
        target=lambda: got.append(receiver.wait(state=state, timeout=10)), daemon=True
    )
    thread.start()
    return thread, got


def test_a_form_post_with_the_right_state_is_the_answer() -> None:
    with LoopbackReceiver() as receiver:
        assert receiver.redirect_uri.startswith("http://localhost:")
        port = int(receiver.redirect_uri.rsplit(":", 1)[1])
        thread, got = _wait_in_thread(receiver, "s-1")
        stray = httpx.get(f"http://127.0.0.1:{port}/favicon.ico")
        forged = httpx.post(f"http://127.0.0.1:{port}", data={"code": "c-0", "state": "other"})
        answer = httpx.post(f"http://127.0.0.1:{port}", data={"code": "c-1", "state": "s-1"})
        thread.join(timeout=10)
    assert stray.status_code == 404
    assert forged.status_code == 400  # another sign-in's answer is ignored
    assert answer.status_code == 200
    assert "Signed in." in answer.text
    assert got == [{"code": "c-1", "state": "s-1"}]


def test_an_error_answer_in_the_query_ends_the_wait() -> None:
    with LoopbackReceiver() as receiver:
        port = int(receiver.redirect_uri.rsplit(":", 1)[1])
        thread, got = _wait_in_thread(receiver, "s-2")
        httpx.get(f"http://127.0.0.1:{port}/?error=access_denied&state=s-2")
        thread.join(timeout=10)
    assert got == [{"error": "access_denied", "state": "s-2"}]


def test_it_listens_on_loopback_only_and_times_out() -> None:
    with LoopbackReceiver() as receiver:
        host = receiver._server.server_address[0]
        assert host == "127.0.0.1"
        assert receiver.wait(state="s-3", timeout=0.2) is None
