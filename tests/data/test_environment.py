"""The environment contract of --num_shards (data/environment.py): every variable the SDKs and libraries read, as
their installed sources show, is classified; a shard's forwarded variables are exactly the driver's whatever the
node had; nothing travels in Ray's runtime_env (its agent logs it)."""
from __future__ import annotations

import os
import re
import urllib.request
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from generation.data import cluster, environment
from generation.data.environment import FORWARDED, NOT_FORWARDED, apply, contract_names, driver_environment, node_only

# The modules where the clients the steps create read their environment (constructors, constants, auth, logs).
SOURCES = ("openai/lib/_client_auth.py", "openai/_utils/_logs.py", "anthropic/_client.py", "anthropic/_utils/_logs.py",
           "together/_client.py", "together/_utils/_logs.py", "huggingface_hub/constants.py",
           "huggingface_hub/utils/_auth.py", "datasets/config.py", "httpx/_config.py")
READ = re.compile(r"""(?:environ\.get|getenv|environ\[|environ\.setdefault)\(?\s*["']([A-Z][A-Z0-9_]*)["']""")


def sources() -> dict[str, str]:
    """Each SOURCES file of the installed packages, by its path."""
    import openai

    site = os.path.dirname(os.path.dirname(openai.__file__))
    return {path: open(os.path.join(site, path), encoding="utf-8").read() for path in SOURCES}


def test_every_variable_the_installed_sdks_read_is_forwarded_or_left_to_the_node_by_one_family():
    unclassified, ambiguous, seen = [], [], 0
    for path, text in sources().items():
        for name in sorted(set(READ.findall(text))):
            seen += 1
            families = [f.name for f in (*FORWARDED, *NOT_FORWARDED) if f.matches(name)]
            (unclassified if not families else ambiguous if len(families) > 1 else []).append(f"{path}: {name}")
    assert seen > 60 and not unclassified and not ambiguous, (unclassified, ambiguous)
    for family in (*FORWARDED, *NOT_FORWARDED):  # each example is what its pattern matches
        assert all(family.matches(example.strip()) for example in family.example.split(",")), family.name


@settings(max_examples=200, deadline=None)
@given(scheme=st.from_regex(r"[a-z][a-z0-9]{0,7}", fullmatch=True), upper=st.booleans())
def test_every_proxy_variable_urllib_reads_is_forwarded(scheme, upper):
    """httpx and aiohttp take proxies from urllib.request.getproxies: any <scheme>_proxy, in either case."""
    name = f"{scheme}_proxy".upper() if upper else f"{scheme}_proxy"
    with mock.patch.dict(os.environ, {name: "http://proxy.invalid:3128"}, clear=True):
        assert urllib.request.getproxies_environment().get(scheme) == "http://proxy.invalid:3128"
        assert contract_names(dict(os.environ)) == {name}


NAMES = sorted({"OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "OPENAI_API_KEY", "ANTHROPIC_BASE_URL",
                "ANTHROPIC_AUTH_TOKEN", "TOGETHER_BASE_URL", "TOGETHER_PROJECT_ID", "HF_ENDPOINT", "HF_TOKEN",
                "HTTPS_PROXY", "http_proxy", "NO_PROXY", "all_proxy", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE",
                "HF_HUB_OFFLINE", "OPENAI_COMPATIBLE_API_KEY", "OPENAI_CUSTOM_HEADERS"})
OTHERS = ("HF_HOME", "PATH", "CUDA_VISIBLE_DEVICES", "OPENAI_LOG", "AWS_REGION")  # a node keeps its own
VALUES = st.from_regex(r"[a-z0-9:/._-]{1,20}", fullmatch=True)


@settings(max_examples=150, deadline=None)
@given(driver=st.dictionaries(st.sampled_from(NAMES + list(OTHERS)), VALUES),
       node=st.dictionaries(st.sampled_from(NAMES + list(OTHERS)), VALUES))
def test_a_shard_sees_exactly_the_drivers_forwarded_variables_whatever_its_node_has(driver, node, tmp_path_factory):
    token_file = str(tmp_path_factory.getbasetemp() / "no-token-here")
    with mock.patch("huggingface_hub.constants.HF_TOKEN_PATH", token_file), \
            mock.patch.dict(os.environ, driver, clear=True):
        given_to_shards = driver_environment()
    assert given_to_shards == {k: v for k, v in driver.items() if k in NAMES}
    refused = node_only(contract_names(node), given_to_shards)
    assert refused == sorted(set(node) - set(driver) - set(OTHERS))  # the preflight names these
    with mock.patch.dict(os.environ, node, clear=True):
        apply(given_to_shards)
        shard = dict(os.environ)
    assert {k: v for k, v in shard.items() if k in NAMES} == given_to_shards
    assert {k: v for k, v in shard.items() if k in OTHERS} == {k: v for k, v in node.items() if k in OTHERS}


def test_a_hub_token_from_the_drivers_token_file_reaches_the_shards_as_hf_token(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("hf_fromfile123\n")
    with mock.patch("huggingface_hub.constants.HF_TOKEN_PATH", str(token_file)), \
            mock.patch.dict(os.environ, {"HF_ENDPOINT": "http://hub.internal"}, clear=True):
        assert driver_environment() == {"HF_ENDPOINT": "http://hub.internal", "HF_TOKEN": "hf_fromfile123"}


def test_a_file_the_driver_names_must_be_on_the_node(tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("x")
    names = {"SSL_CERT_FILE": str(bundle), "SSL_CERT_DIR": str(tmp_path / "missing"), "HTTPS_PROXY": "http://p:1"}
    assert environment.missing_files(names) == [f"SSL_CERT_DIR={tmp_path / 'missing'}"]


def test_no_variable_goes_into_rays_runtime_env(monkeypatch):
    """Ray's runtime_env agent writes the runtime_env (env_vars included) into its logs: connect() puts none."""
    import ray

    seen = {}
    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-in-runtime-env")
    monkeypatch.setattr(ray, "init", lambda **kwargs: seen.update(kwargs))
    monkeypatch.setattr(cluster, "guard_descendants", lambda: None)
    cluster.connect(None)
    assert set(seen["runtime_env"]) == {"py_modules", "excludes"} and "sk-never" not in repr(seen)
