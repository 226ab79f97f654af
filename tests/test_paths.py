"""glassbox.paths.write_private: an atomic, owner-only file replace, safe from several threads at once."""

from __future__ import annotations

import stat
import threading

from glassbox.paths import write_private


def test_threads_replacing_one_file_never_collide_and_leave_it_whole_and_private(tmp_path):
    target = tmp_path / "wrapped-secret-id"
    contents = {f"writer {n}: " + str(n) * 200 for n in range(8)}
    errors: list[BaseException] = []

    def writer(text):
        try:
            for _ in range(200):
                write_private(target, text)
                assert target.read_text() in contents   # a reader never sees a half-written file
        except BaseException as error:  # reported below, with the thread's failure
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(text,)) for text in contents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert target.read_text() in contents
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["wrapped-secret-id"]   # no staging file left behind
