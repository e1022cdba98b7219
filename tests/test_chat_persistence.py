"""The chat's SQLite data layer keeps what a step and a thread last showed (issue 22 item 5),
without a browser: step writes land in the order they were made, a thread read for resuming
has its steps' icons and its video's autoplay, and thread titles are distinct."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("chainlit")


async def _steps_in_order(tmp_path: Path) -> dict[str, str]:
    """A step created and at once updated, as Chainlit does (a task for each write)."""
    from chainlit.context import init_http_context

    from vistarag.ui.web.persistence import make_data_layer

    layer = make_data_layer(tmp_path / "chat.sqlite", tmp_path / "elements")
    thread = str(uuid.uuid4())
    init_http_context(thread_id=thread)
    await layer.update_thread(thread, name="t")
    tasks, final = [], {}
    for i in range(12):
        step = {"id": str(uuid.uuid4()), "threadId": thread, "type": "tool", "streaming": False,
                "name": f"Reading the question {i}", "metadata": {"icon": "scan-eye"}}
        tasks.append(asyncio.create_task(layer.create_step(dict(step))))
        for summary in (" · text question", " · text question · 3 ms"):
            step["name"] += summary
            tasks.append(asyncio.create_task(layer.update_step(dict(step))))
        final[step["id"]] = step["name"]
    await asyncio.gather(*tasks)
    thread_dict = await layer.get_thread(thread)
    assert thread_dict is not None
    got = {s["id"]: s["name"] for s in thread_dict["steps"]}
    assert all(s["metadata"] == {"icon": "scan-eye"} for s in thread_dict["steps"])
    return {k: (got[k], v) for k, v in final.items() if got[k] != v}


def test_a_step_keeps_its_last_name_and_its_icon(tmp_path: Path) -> None:
    assert asyncio.run(_steps_in_order(tmp_path)) == {}


async def _video_autoplay(tmp_path: Path) -> dict:
    from chainlit.context import init_http_context
    from chainlit.element import Video

    from vistarag.ui.web.persistence import make_data_layer

    layer = make_data_layer(tmp_path / "chat.sqlite", tmp_path / "elements")
    thread = str(uuid.uuid4())
    init_http_context(thread_id=thread)
    await layer.update_thread(thread, name="t")
    config = {"file": {"attributes": {"autoPlay": True}}}
    video = Video(name="talk.mp4 @ 00:04", url="/vistarag/source/d/talk.mp4#t=4",
                  display="side", player_config=config, for_id="m1", thread_id=thread)
    await layer.create_element(video)
    thread_dict = await layer.get_thread(thread)
    assert thread_dict is not None
    return thread_dict["elements"][0]


def test_a_resumed_video_still_plays_by_itself(tmp_path: Path) -> None:
    element = asyncio.run(_video_autoplay(tmp_path))
    assert element["playerConfig"] == {"file": {"attributes": {"autoPlay": True}}}
    assert element["url"].endswith("#t=4")


async def _titles(tmp_path: Path) -> list[str]:
    from chainlit.context import init_http_context

    from vistarag.ui.web.persistence import make_data_layer

    layer = make_data_layer(tmp_path / "chat.sqlite", tmp_path / "elements")
    init_http_context()
    user = await layer.create_user(__import__("chainlit").User(identifier="alice"))
    assert user is not None
    ids = [str(uuid.uuid4()) for _ in range(4)]
    for thread in ids[:3]:  # the first message of three threads, as Chainlit titles them
        await layer.update_thread(thread, user_id=user.id)
        await layer.update_thread(thread, name="What is QX-4471?", user_id=user.id)
    await layer.update_thread(ids[0], name="Renamed", user_id=user.id)  # a rename is kept
    await layer.update_thread(ids[3], name="", user_id=user.id)  # files only: no title yet
    await layer.title_untitled(ids[3], "Added report.pdf")
    await layer.title_untitled(ids[1], "Added other.pdf")  # titled already: unchanged
    return [(await layer.get_thread(t) or {}).get("name") for t in ids]


def test_threads_started_alike_are_titled_apart(tmp_path: Path) -> None:
    assert asyncio.run(_titles(tmp_path)) == [
        "Renamed", "What is QX-4471? (2)", "What is QX-4471? (3)", "Added report.pdf"]


def test_step_metadata_stays_json_in_the_table(tmp_path: Path) -> None:
    """What Chainlit's own reader gets (text), which ``get_thread`` turns back into a dict."""
    import sqlite3

    asyncio.run(_steps_in_order(tmp_path))
    with sqlite3.connect(tmp_path / "chat.sqlite") as conn:
        stored = conn.execute("SELECT metadata FROM steps LIMIT 1").fetchone()[0]
    assert json.loads(stored) == {"icon": "scan-eye"}


async def _late_writes(tmp_path: Path) -> tuple[Any, int, int]:
    """Alice's thread deleted, then what Chainlit does when her socket closes a moment later
    (``persist_user_session``: the session's metadata upserted onto the thread) and a step
    write still queued."""
    import sqlite3

    from chainlit.context import init_http_context
    from chainlit.user import User

    from vistarag.ui.web.persistence import make_data_layer

    layer = make_data_layer(tmp_path / "chat.sqlite", tmp_path / "elements")
    thread = str(uuid.uuid4())
    init_http_context(thread_id=thread)
    alice = await layer.create_user(User(identifier="alice"))
    assert alice is not None
    await layer.update_thread(thread, name="The vault", user_id=alice.id)
    step = {"id": str(uuid.uuid4()), "threadId": thread, "type": "run", "name": "turn",
            "streaming": False}
    await layer.create_step(dict(step))
    with sqlite3.connect(tmp_path / "chat.sqlite") as conn:  # the step landed
        assert conn.execute('SELECT COUNT(*) FROM steps WHERE "threadId" = ?',
                            (thread,)).fetchone()[0] == 1
    await layer.delete_thread(thread)
    await layer.update_thread(thread_id=thread, metadata={"chat_settings": {"top_k": 5}})
    await layer.create_step({**step, "id": str(uuid.uuid4())})
    with sqlite3.connect(tmp_path / "chat.sqlite") as conn:
        threads = conn.execute('SELECT COUNT(*) FROM threads WHERE "id" = ?', (thread,))
        steps = conn.execute('SELECT COUNT(*) FROM steps WHERE "threadId" = ?', (thread,))
        counts = threads.fetchone()[0], steps.fetchone()[0]
    return await layer.get_thread(thread), *counts


def test_a_deleted_thread_stays_deleted_when_its_session_closes_after(tmp_path: Path) -> None:
    """The upsert would bring the thread back without an author, and Chainlit would then refuse
    every socket on that id (a CI run saw Bob refused that way, before the app could answer)."""
    assert asyncio.run(_late_writes(tmp_path)) == (None, 0, 0)
