"""A Pipes message caught half-written is read once it is whole (Dagster's own reader parsed the
half and lost every later message of the run)."""

import json
import threading
import time

from resources.pipes_messages import complete_lines


def test_a_half_written_message_is_read_only_when_its_line_is_complete(tmp_path):
    path = tmp_path / "messages"
    message = json.dumps({"method": "log", "params": {"message": "step 12/30 loss=3.8"}})
    path.write_text(message[:20], encoding="utf-8")  # the writer is mid-line
    done = threading.Event()

    def finish_writing():
        time.sleep(0.2)
        with open(path, "a", encoding="utf-8") as stream:
            stream.write(message[20:] + "\n" + json.dumps({"method": "closed"}) + "\n")
        time.sleep(0.1)
        done.set()

    threading.Thread(target=finish_writing).start()
    lines = list(complete_lines(str(path), done.is_set))
    assert [json.loads(line) for line in lines] == [json.loads(message), {"method": "closed"}]


def test_a_last_message_without_newline_is_still_delivered(tmp_path):
    path = tmp_path / "messages"
    path.write_text('{"method": "closed"}', encoding="utf-8")
    assert list(complete_lines(str(path), lambda: True)) == ['{"method": "closed"}']
