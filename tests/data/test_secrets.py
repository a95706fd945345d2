"""No credential is ever written or printed: every entry point runs with a secret --base_url and keys in the
environment, then every file under the run's folder (whatever its type) and everything printed is searched."""
from __future__ import annotations

import base64
import os
import shutil
import stat
import tempfile
import time

import datasets
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generation import generate_reasoning_samples, merge_shards, unified_evaluation, verifier_report
from generation import unified_RMs_and_LM_Judges as step3
from generation.common.cli import run_main, settings_from
from generation.common.redact import ABOUT_WORDS, SECRET_WORDS, redact, redact_text
from generation.data import sharding
from generation.data.environment import driver_environment
from generation.steps import evaluate
from generation.steps.settings import EvaluateSettings, GenerateSettings

from conftest import ROOT
from fixtures_benchmarks import write_benchmarks
from loopback import LoopbackServer, Reply

USER, PASSWORD, TOKEN = "uSeR7q", "p@SSw0rd9f", "T0KENq81x"  # the password holds an @
ENV_KEYS = {"OPENAI_API_KEY": "sk-envkey-1118", "OPENAI_COMPATIBLE_API_KEY": "sk-compat-2229",
            "ANTHROPIC_API_KEY": "sk-ant-3330", "HF_TOKEN": "hf_envtoken4441"}
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()  # the header the project builds from user-info
SECRETS = (USER, PASSWORD, "SSw0rd9f", TOKEN, BASIC, *ENV_KEYS.values())


def secret_url(server: LoopbackServer) -> str:
    """The loopback's URL with user-info (a password holding @) and a token query parameter."""
    return server.url.replace("://", f"://{USER}:{PASSWORD}@") + f"?token={TOKEN}"


def cli(main, argv: list[str]) -> int:
    """Run a script's main as its __main__ does; its exit code."""
    with pytest.raises(SystemExit) as exited:
        run_main(main, argv)
    return exited.value.code


def leaks(folder: str, printed: str, since: float | None = None, secrets: tuple[str, ...] = SECRETS) -> list[str]:
    """Where a secret appears: every file under folder (read as bytes), the printed text and, with `since`, every
    file any process wrote since then (written_since: Ray's temp folder and its workers' logs among them)."""
    found = [f"printed: {s}" for s in secrets if s in printed]
    paths = [os.path.join(root, name) for root, _, files in os.walk(folder) for name in files]
    for path in dict.fromkeys(paths + (written_since(since) if since is not None else [])):
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError:  # removed meanwhile, or a socket
            continue
        found += [f"{path}: {s}" for s in secrets if s.encode() in data]
    return found


WRITABLE_ROOTS = (tempfile.gettempdir(), "/dev/shm", "/var/tmp", os.path.expanduser("~"), ROOT)


def written_since(since: float, roots: tuple[str, ...] = WRITABLE_ROOTS) -> list[str]:
    """Every regular file under the folders a process of a run can write to (the temporary folders, Ray's temp
    folder among them, the home folder, the checkout) modified since `since`."""
    found = []
    for top in roots:
        for root, _, files in os.walk(top):
            for name in files:
                path = os.path.join(root, name)
                try:
                    info = os.lstat(path)
                except OSError:
                    continue
                if stat.S_ISREG(info.st_mode) and info.st_mtime >= since:
                    found.append(path)
    return found


def shard_runs(step: str, parser, settings_class: type, argv: list[str]) -> list[str]:
    """Run a step's two shards as its Ray tasks do (sharding.run_shard, done markers included); their outputs."""
    settings = settings_from(settings_class, vars(parser.parse_args(argv)))
    shards = [sharding.shard_settings(settings, part) for part in sharding.split(range(4), 2)]
    for shard in shards:
        assert sharding.run_shard(step, shard, os.getcwd(), driver_environment())["code"] in (0, 1)
    return [shard.output_path for shard in shards]


def test_every_entry_point_writes_and_prints_no_credential(tmp_path, capfd, monkeypatch):
    for name, value in ENV_KEYS.items():
        monkeypatch.setenv(name, value)
    run = str(tmp_path)
    bench = write_benchmarks(os.path.join(run, "bench"), ("mmlu",))
    step1 = ["--model", "loop", "--dataset", "mmlu", "--dataset_path", os.path.join(bench, "mmlu.jsonl"),
             "--samples_per_instruction", "2", "--max_rows", "4"]
    with LoopbackServer() as server:
        url = secret_url(server)
        one, two, three = (os.path.join(run, name) for name in ("s1.hf", "s2.hf", "s3.hf"))
        assert cli(generate_reasoning_samples.main, step1 + ["--base_url", url, "--output_path", one]) == 0
        assert cli(generate_reasoning_samples.main, step1 + ["--base_url", url, "--output_path", one + "x",
                                                             "--dry_run"]) == 0
        step2 = ["-i", one, "-t", "mmlu", "--llm_fallback", "always", "--judge_model", "loop", "--base_url", url]
        assert cli(unified_evaluation.main, step2 + ["-o", two]) in (0, 1)
        assert cli(unified_evaluation.main, step2 + ["-o", two + "x", "--dry_run"]) == 0
        step3_argv = ["--dataset_path", two, "--reward_models", "", "--lm_judges", "Loop=openai_compatible:judge",
                      "--base_url", url]
        assert cli(step3.main, step3_argv + ["--output_path", three]) in (0, 1)
        assert cli(step3.main, step3_argv + ["--output_path", three + "x", "--dry_run"]) == 0

        parts = shard_runs("generation.steps.generate.generate", generate_reasoning_samples.build_parser(),
                           GenerateSettings, step1 + ["--base_url", url, "--output_path", os.path.join(run, "sh1.hf")])
        shard_runs("generation.steps.evaluate.run", evaluate.build_parser(), EvaluateSettings,
                   step2 + ["-o", os.path.join(run, "sh2.hf")])
    assert cli(merge_shards.main, ["--shards", *parts, "--output_path", os.path.join(run, "merged.hf")]) == 0
    assert cli(verifier_report.main, ["--dataset_path", three, "--output_dir", os.path.join(run, "report"),
                                      "--export_weaver", os.path.join(run, "weaver"),
                                      "--rename", "Loop=GPT-4o-mini_verdicts"]) == 0
    # error paths: an unreachable secret URL, and a run refused because its input is nested in its output
    dead = url.replace(str(server.httpd.server_address[1]), "9")
    assert cli(generate_reasoning_samples.main, step1 + ["--base_url", dead, "--output_path", one + "e"]) == 2
    assert cli(unified_evaluation.main, ["-i", one, "-t", "mmlu", "-o", os.path.join(one, "inner"),
                                         "--base_url", url]) == 2
    out, err = capfd.readouterr()
    assert "error:" in err and datasets.load_from_disk(three)["data"].num_rows == 4
    found = leaks(run, out + err)
    assert not found, "\n".join(found)


def echo_credentials(path: str, request: dict, count: int, headers: dict) -> Reply:
    """A server whose error body quotes the request's headers (some proxies and gateways do)."""
    auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
    return Reply(status=400, body={"error": {"message": f"bad credentials {auth.split()[-1]} for this model",
                                             "type": "invalid_request_error"}})


echo_credentials.accepts_headers = True


def test_a_credential_the_project_derives_is_masked_when_a_server_echoes_it(tmp_path, capfd):
    bench = write_benchmarks(str(tmp_path / "bench"), ("mmlu",))
    out = str(tmp_path / "s1.hf")
    with LoopbackServer(echo_credentials) as server:
        code = cli(generate_reasoning_samples.main, ["--model", "loop", "--dataset", "mmlu", "--dataset_path",
                                                     os.path.join(bench, "mmlu.jsonl"), "--max_rows", "2",
                                                     "--base_url", secret_url(server), "--output_path", out])
        assert server.requests and BASIC in str(server.requests[0]["headers"])
    out_text, err = capfd.readouterr()
    assert code in (1, 2) and "bad credentials ***" in out_text + err, (out_text + err)[-2000:]  # told, masked
    found = leaks(str(tmp_path), out_text + err)
    assert not found, "\n".join(found)


@pytest.mark.parametrize("text", [
    "http://u:p@ss@w@host/v1?token=abc&x=1", "Authorization: Bearer abc.def", "curl -H 'authorization: sk-zz'",
    "https://s3/x?X-Amz-Signature=abc&X-Amz-Date=1", "api_key=sk-12345 and password=hunter2",
])
def test_redaction_masks_credentials_in_values_and_is_idempotent(text):
    once = redact_text(text)
    assert once == redact_text(once) and "***" in once
    assert not any(secret in once for secret in ("p@ss", "ss@w", "abc", "sk-", "hunter2"))
    assert "x=1" in once or "x=1" not in text  # other query parameters and token counts are kept
    assert redact({"cmd": [text], "max_new_tokens": 8, "token_usage": {"prompt_tokens": 3}}) == {
        "cmd": [once], "max_new_tokens": 8, "token_usage": {"prompt_tokens": 3}}


@pytest.mark.slow
def test_sharded_step_on_ray_writes_and_prints_no_credential(tmp_path, capfd, monkeypatch, request):
    """A local Ray of its own (in a temp folder of its own), keys in the environment: no file that any process
    wrote (Ray's logs included) holds one."""
    for name, value in ENV_KEYS.items():
        monkeypatch.setenv(name, value)
    ray_tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths
    monkeypatch.setenv("RAY_TMPDIR", ray_tmp)
    request.addfinalizer(lambda: shutil.rmtree(ray_tmp, ignore_errors=True))
    started = time.time()
    run = str(tmp_path)
    bench = write_benchmarks(os.path.join(run, "bench"), ("mmlu",))
    with LoopbackServer() as server:
        argv = ["--model", "loop", "--dataset", "mmlu", "--dataset_path", os.path.join(bench, "mmlu.jsonl"),
                "--samples_per_instruction", "2", "--max_rows", "4", "--base_url", secret_url(server),
                "--output_path", os.path.join(run, "s1.hf"), "--num_shards", "2", "--keep_shards"]
        assert cli(generate_reasoning_samples.main, argv) == 0
    out, err = capfd.readouterr()
    assert os.path.exists(os.path.join(run, "s1.hf.checkpoint", "shards"))
    ray_logs = os.path.join(os.environ["RAY_TMPDIR"], "ray", "session_latest", "logs")
    assert any(name.startswith("runtime_env_agent") for name in os.listdir(ray_logs))  # Ray's logs are searched
    found = leaks(run, out + err, since=started)
    assert not found, "\n".join(found)


NAME_WORDS = st.sampled_from(["openai", "hf", "x", "amz", "aws", "access", "session", "my", "ray", "db", "max", "new"])
SEPARATORS = st.sampled_from(["_", "-", ".", ""])


@settings(max_examples=300, deadline=None)
@given(words=st.lists(NAME_WORDS, max_size=3), secret=st.sampled_from(sorted(SECRET_WORDS)),
       about=st.one_of(st.none(), st.sampled_from(sorted(ABOUT_WORDS))), sep=SEPARATORS,
       upper=st.booleans(), value=st.from_regex(r"[A-Za-z0-9]{6,20}", fullmatch=True))
def test_a_value_is_masked_exactly_when_its_name_names_the_secret_itself(words, secret, about, sep, upper, value):
    """NAME=value is masked when a word of NAME is a secret word and NAME is not about the secret (its mode, path,
    count...); the name itself is always kept."""
    parts = [*words, secret, *([about] if about else [])]
    name = (sep or "_").join(parts)
    name = name.upper() if upper else name
    shown = redact_text(f"set {name}={value} now", secrets=[])
    assert shown.startswith(f"set {name}=")
    assert (f"={value} " not in shown) == (about is None), shown
