"""lode_reward: score a model's text-to-SQL replies with lode's reward service.

Written beside an RL task file by `lode export --format rl-tasks`. Standard library only.

The service runs the predicted SQL on the project's database and compares its result with
the gold's, the way `lode eval` does. Two ways to reach it:

* HTTP: start `lode reward serve --port 8700` in the project directory, then
  `LodeReward(url="http://127.0.0.1:8700")` (or set LODE_REWARD_URL).
* A subprocess: `LodeReward(command=["lode", "-C", "my-project", "reward", "--stdin"])`
  starts lode once and speaks JSON lines with it.

TRL (GRPOTrainer, the `trl` flavour)::

    from lode_reward import LodeReward, trl_reward
    reward = trl_reward(LodeReward(url="http://127.0.0.1:8700"))
    trainer = GRPOTrainer(model=..., reward_funcs=[reward], train_dataset=dataset, ...)

verl (the `verl` flavour): point `custom_reward_function.path` at this file and
`custom_reward_function.name` at `compute_score`; it reads LODE_REWARD_URL.

Smoke test::

    python3 lode_reward.py --url http://127.0.0.1:8700 --gold-sql "SELECT 1" --prediction "SELECT 1"
"""

import json
import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8700"
SHAPES = ("arctic", "binary", "soft_f1")

__all__ = [
    "DEFAULT_URL",
    "SHAPES",
    "LodeReward",
    "LodeRewardError",
    "compute_score",
    "reply_text",
    "trl_reward",
]


class LodeRewardError(RuntimeError):
    """The reward service could not be reached, refused a request, or answered nonsense."""


def _start_hint(url):
    try:
        port = urllib.parse.urlsplit(url).port or 8700
    except ValueError:
        port = 8700
    return ("start it in the project directory with `lode reward serve --port %d`, or set "
            "LODE_REWARD_URL to where it listens" % port)


class LodeReward:
    """A client of lode's reward service.

    url: the HTTP service (`lode reward serve`); command: a `lode reward --stdin` command
    line to run as a persistent subprocess instead. With neither, LODE_REWARD_URL (default
    http://127.0.0.1:8700). shape: arctic, binary or soft_f1. timeout: seconds per HTTP
    request.
    """

    def __init__(self, url=None, command=None, shape="arctic", timeout=60):
        if url and command:
            raise ValueError("give url or command, not both")
        if shape not in SHAPES:
            raise ValueError("shape must be one of %s, not %r" % (", ".join(SHAPES), shape))
        if command is not None and isinstance(command, str):
            raise ValueError('command is a list of arguments, e.g. ["lode", "reward", "--stdin"]')
        self.command = list(command) if command else None
        self.url = None if self.command else (url or os.environ.get("LODE_REWARD_URL") or DEFAULT_URL)
        if self.url:
            self.url = self.url.rstrip("/")
        self.shape = shape
        self.timeout = timeout
        self._proc = None

    def __repr__(self):
        where = "url=%r" % self.url if self.url else "command=%r" % self.command
        return "LodeReward(%s, shape=%r)" % (where, self.shape)

    # -- HTTP --------------------------------------------------------------------------------

    def _request(self, path, body=None):
        url = self.url + path
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(
            url,
            data=data,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            method="GET" if body is None else "POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                text = resp.read().decode("utf-8")
        except urllib.error.HTTPError as e:
            raw = e.read().decode("utf-8", "replace")
            try:
                err = json.loads(raw).get("error") or {}
                what = "%s: %s" % (err.get("kind", "error"), err.get("message", raw))
            except (ValueError, AttributeError):
                what = raw.strip() or e.reason
            raise LodeRewardError("lode's reward service at %s refused the request (HTTP %d): %s"
                                  % (url, e.code, what)) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise LodeRewardError("cannot reach lode's reward service at %s (%s): %s"
                                  % (url, reason, _start_hint(self.url))) from None
        try:
            return json.loads(text)
        except ValueError:
            raise LodeRewardError("lode's reward service at %s answered something that is not "
                                  "JSON: %r" % (url, text[:200])) from None

    def health(self):
        """The service's /health answer (HTTP only)."""
        if not self.url:
            raise LodeRewardError("health() needs the HTTP service (url), not a command")
        return self._request("/health")

    # -- subprocess --------------------------------------------------------------------------

    def _process(self):
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        cmd = list(self.command)
        if "--shape" not in cmd:
            cmd += ["--shape", self.shape]
        try:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                encoding="utf-8",
                bufsize=1,
            )
        except OSError as e:
            raise LodeRewardError("cannot start %s: %s (is lode on PATH?)" % (" ".join(cmd), e)) from None
        return self._proc

    def _score_lines(self, items):
        proc = self._process()
        out = []
        # A few items at a time, so neither side blocks on a full pipe.
        for start in range(0, len(items), 16):
            chunk = items[start:start + 16]
            try:
                for item in chunk:
                    proc.stdin.write(json.dumps(item) + "\n")
                proc.stdin.flush()
            except (BrokenPipeError, OSError):
                raise LodeRewardError("%s stopped (exit %s): see its messages above"
                                      % (" ".join(self.command), proc.poll())) from None
            for _ in chunk:
                line = proc.stdout.readline()
                if not line:
                    raise LodeRewardError("%s stopped (exit %s) before answering: see its messages "
                                          "above" % (" ".join(self.command), proc.wait()))
                try:
                    out.append(json.loads(line))
                except ValueError:
                    raise LodeRewardError("%s answered a line that is not JSON: %r"
                                          % (" ".join(self.command), line[:200])) from None
        return out

    def close(self):
        """Stops the subprocess, if one runs."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            try:
                proc.stdin.close()
                proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    # -- scoring -----------------------------------------------------------------------------

    def score(self, items):
        """Scores items ({"prediction", and "question_id" or "gold_sql", optional "db" and
        "id"}); returns one score object per item, in order: {"id", "score", "parts",
        "reason", "detail", "sql"} (and "error" for an item that could not be scored)."""
        items = [dict(item, id=item.get("id", i)) for i, item in enumerate(items)]
        if not items:
            return []
        if self.url:
            answer = self._request("/score", {"shape": self.shape, "items": items})
            scores = answer.get("scores") if isinstance(answer, dict) else None
            if not isinstance(scores, list):
                raise LodeRewardError("lode's reward service at %s/score answered without scores: %r"
                                      % (self.url, str(answer)[:200]))
        else:
            scores = self._score_lines(items)
        if len(scores) != len(items):
            raise LodeRewardError("lode's reward service answered %d scores for %d items"
                                  % (len(scores), len(items)))
        for item, s in zip(items, scores):
            if isinstance(s, dict) and "id" in s and s["id"] != item["id"]:
                raise LodeRewardError("lode's reward service answered item %r where %r was due"
                                      % (s["id"], item["id"]))
        return scores


def reply_text(completion):
    """The text of a reply: a string as is; of chat messages, the last assistant content."""
    if completion is None:
        return ""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return _content(completion.get("content"))
    if isinstance(completion, (list, tuple)):
        for message in reversed(completion):
            if isinstance(message, dict) and message.get("role", "assistant") == "assistant":
                return _content(message.get("content"))
        return ""
    return str(completion)


def _content(content):
    if content is None:
        return ""
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}]
        return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    return str(content)


def _at(values, i):
    if values is None:
        return None
    if isinstance(values, (list, tuple)):
        return values[i] if i < len(values) else None
    return values


def trl_reward(client=None):
    """A TRL reward function (GRPOTrainer's reward_funcs) scoring through `client`.

    TRL passes the dataset's extra columns of the `trl` flavour (question_id, gold_sql,
    db_id) as keyword arguments, one value per completion."""
    client = client if client is not None else LodeReward()

    def reward(prompts=None, completions=None, question_id=None, gold_sql=None, db_id=None, **kwargs):
        items = []
        for i, completion in enumerate(completions or []):
            item = {"id": i, "prediction": reply_text(completion)}
            for key, values in (("question_id", question_id), ("gold_sql", gold_sql), ("db", db_id)):
                value = _at(values, i)
                if value is not None:
                    item[key] = value
            items.append(item)
        return [float(s.get("score") or 0.0) for s in client.score(items)]

    reward.__name__ = "lode_reward"
    return reward


_default_client = None


def _client():
    global _default_client
    if _default_client is None:
        _default_client = LodeReward(url=os.environ.get("LODE_REWARD_URL") or DEFAULT_URL,
                                     shape=os.environ.get("LODE_REWARD_SHAPE") or "arctic")
    return _default_client


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    """verl's custom reward function: the score of one reply (LODE_REWARD_URL, and
    LODE_REWARD_SHAPE, default arctic)."""
    extra = extra_info or {}
    item = {"id": 0, "prediction": reply_text(solution_str), "gold_sql": ground_truth}
    if extra.get("question_id"):
        item["question_id"] = extra["question_id"]
    if extra.get("db_id"):
        item["db"] = extra["db_id"]
    return float(_client().score([item])[0].get("score") or 0.0)


def _main(argv):
    import argparse

    p = argparse.ArgumentParser(description="Score one reply with lode's reward service.")
    p.add_argument("--url", default=os.environ.get("LODE_REWARD_URL") or DEFAULT_URL)
    p.add_argument("--gold-sql")
    p.add_argument("--question-id")
    p.add_argument("--prediction", required=True)
    p.add_argument("--db")
    p.add_argument("--shape", default="arctic", choices=SHAPES)
    args = p.parse_args(argv)
    if not args.gold_sql and not args.question_id:
        p.error("give --gold-sql or --question-id")
    item = {"id": 0, "prediction": args.prediction}
    for key, value in (("gold_sql", args.gold_sql), ("question_id", args.question_id), ("db", args.db)):
        if value:
            item[key] = value
    try:
        print(json.dumps(LodeReward(url=args.url, shape=args.shape).score([item])[0], indent=2))
    except LodeRewardError as e:
        print("lode_reward: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
