"""A TorchServe handler that reports what it was given, for tests of how modelplane calls handlers.

Each row's `data` is a word: "fail" makes the whole call raise; "exhaust" makes it raise MemoryError; "refuse" makes the handler answer that
row with its own status; "unsendable" answers it with a set, which JSON cannot carry; "threads" with torch's thread count; "meet" waits until another worker's call has also arrived (a file in
MEET_DIR for each), and reports whether it met one. Every result carries the batch size the handler
saw and which handler instance (worker) saw it.
"""

import os
import pathlib
import time

import torch
from ts.torch_handler.base_handler import BaseHandler


class Probe(BaseHandler):
    def initialize(self, context):
        self.context = context
        self.worker = f"{id(self):x}"
        self.initialized = True

    def handle(self, data, context):
        results = []
        for index, row in enumerate(data):
            word = row.get("data") or row.get("body") if isinstance(row, dict) else row
            if isinstance(word, bytes | bytearray):
                word = word.decode()
            if word == "fail":
                raise ValueError("asked to fail")
            if word == "exhaust":
                raise MemoryError()
            if word == "unsendable":
                results.append({word})  # a set: no JSON for it
                continue
            if word == "threads":
                results.append({"threads": torch.get_num_threads()})
                continue
            if word == "refuse":
                context.set_response_status(422, "the probe refuses this row", idx=index)
            met = self._meet() if word == "meet" else None
            results.append({"batch": len(data), "worker": self.worker, "word": word, "met": met})
        return results

    def _meet(self) -> bool:
        folder = pathlib.Path(os.environ["MEET_DIR"])
        (folder / self.worker).touch()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if len(list(folder.iterdir())) >= 2:
                return True
            time.sleep(0.01)
        return False
