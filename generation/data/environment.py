"""The environment contract of --num_shards: a shard sees the variables that change what a step asks, or where it
sends it, exactly as the driver has them.

The variables are those that the SDKs and libraries the steps use read (from their installed sources: openai's
lib/_client_auth.py, anthropic's and together's _client.py, huggingface_hub's constants.py and utils/_auth.py,
datasets' config.py, httpx's _config.py and urllib's getproxies for httpx and aiohttp). They travel in each Ray
task's arguments, never in Ray's runtime_env `env_vars` (Ray's runtime_env agent writes those into its logs under
Ray's temp folder). The cluster preflight refuses a node that sets one the driver does not, and a node without a file
one of them names (a CA bundle); tests/data/test_environment.py checks that every variable those sources read is
classified here.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    """Variables that play one part, by a name pattern (matched whole), with an example of what it matches."""

    name: str
    pattern: str
    example: str
    file: bool = False  # the value names a file or folder that every node must have

    def matches(self, variable: str) -> bool:
        """Whether a variable belongs to this family."""
        return re.fullmatch(self.pattern, variable) is not None


FORWARDED = (  # given to every shard as the driver has them (set, or unset)
    Family("API keys and tokens", r"(OPENAI|OPENAI_COMPATIBLE|ANTHROPIC|TOGETHER)_API_KEY|OPENAI_ADMIN_KEY|"
           r"ANTHROPIC_AUTH_TOKEN|HF_TOKEN|HUGGING_FACE_HUB_TOKEN|HF_OIDC_(ID_TOKEN|RESOURCE)", "OPENAI_API_KEY"),
    Family("servers, accounts and headers", r"(OPENAI|ANTHROPIC|TOGETHER)_(BASE_URL|CUSTOM_HEADERS)|"
           r"OPENAI_(ORG|PROJECT)_ID|TOGETHER_PROJECT_ID|HF_ENDPOINT|HF_INFERENCE_ENDPOINT|HUGGINGFACE_CO_STAGING",
           "OPENAI_BASE_URL"),
    Family("proxies (urllib.request.getproxies: any <scheme>_proxy, either case)", r"(?i)[a-z0-9]+_proxy",
           "HTTPS_PROXY, no_proxy"),
    Family("CA bundles", r"SSL_CERT_FILE|SSL_CERT_DIR|REQUESTS_CA_BUNDLE|CURL_CA_BUNDLE", "SSL_CERT_FILE", file=True),
    Family("hub access", r"HF_HUB_OFFLINE|HF_DATASETS_OFFLINE|TRANSFORMERS_OFFLINE|HF_HUB_DISABLE_IMPLICIT_TOKEN|"
           r"HF_HUB_(ETAG|DOWNLOAD)_TIMEOUT|HF_HUB_DISABLE_XET|HF_HUB_ENABLE_HF_TRANSFER", "HF_HUB_OFFLINE"),
)
NOT_FORWARDED = (  # read by those sources, but left to each node
    Family("node-local caches, configuration and credential files (set HF_HOME on each node; the driver's hub "
           "token is forwarded as HF_TOKEN)", r"HF_HOME|XDG_(CACHE|CONFIG)_HOME|HF_TOKEN_PATH|HF_XET_CACHE|"
           r"(HUGGINGFACE|HF)_(HUB|ASSETS)_CACHE|HF_DATASETS_CACHE|HF_MODULES_CACHE|HF_DATASETS_\w+_PATH|"
           r"CLAUDE_CONFIG_DIR|APPDATA|LOCALAPPDATA|TOGETHER_CREDENTIALS_PATH", "HF_HOME"),
    Family("clients the steps never create (Azure, Bedrock, Vertex, Foundry, webhooks, Spaces OAuth)",
           r"AZURE_\w+|AWS_\w+|GOOGLE_CLOUD_\w+|CLOUD_ML_REGION|ANTHROPIC_(VERTEX|BEDROCK|FOUNDRY|GOOGLE_CLOUD)\w*|"
           r"OPENAI_API_(VERSION|TYPE)|\w*WEBHOOK\w*|OAUTH_\w+|OPENID_PROVIDER_URL|SPACE_\w+|"
           r"HF_DEVICE_CODE_OAUTH_CLIENT_ID|ANTHROPIC_(WORK_SECRET|ENVIRONMENT_KEY)", "AZURE_OPENAI_ENDPOINT"),
    Family("what is logged or shown, not what is asked (logs, telemetry, progress bars, warnings)",
           r"\w+_LOG|HF_DEBUG|\w*TELEMETRY\w*|DO_NOT_TRACK|\w+_PROGRESS_BARS|\w+_WARNING|HF_HUB_DISABLE_UPDATE_CHECK|"
           r"HF_HUB_USER_AGENT_ORIGIN|NO_COLOR", "OPENAI_LOG"),
    Family("how a node stores and loads files", r"HF_HUB_DISABLE_(SYMLINKS|SHARED_BLOBS)|HF_XET_HIGH_PERFORMANCE|"
           r"HF_DATASETS_IN_MEMORY_MAX_SIZE|HF_UPDATE_DOWNLOAD_COUNTS|USE_(TORCH|TF|JAX)", "USE_TORCH"),
)
HUB_TOKEN = "HF_TOKEN"


def family_of(variable: str) -> Family | None:
    """The forwarded family a variable belongs to (None when it is not forwarded)."""
    return next((family for family in FORWARDED if family.matches(variable)), None)


def contract_names(environ: dict[str, str]) -> set[str]:
    """The forwarded variables set (non-empty) in an environment."""
    return {name for name, value in environ.items() if value and family_of(name)}


def driver_environment() -> dict[str, str]:
    """What every shard gets: the driver's forwarded variables, and its hub token as HF_TOKEN when it logged in with
    a token file instead (a node may have another file, or none). Never printed or written."""
    environment = {name: os.environ[name] for name in sorted(contract_names(dict(os.environ)))}
    if HUB_TOKEN not in environment:
        from huggingface_hub import get_token

        token = get_token()
        if token:
            environment[HUB_TOKEN] = token
    return environment


def apply(environment: dict[str, str]) -> None:
    """Inside a shard: the forwarded variables become exactly the driver's (a node's own ones are removed)."""
    for name in contract_names(dict(os.environ)) - set(environment):
        del os.environ[name]
    os.environ.update(environment)


def node_only(node: set[str], driver: dict[str, str]) -> list[str]:
    """Forwarded variables a node sets and the driver does not (its shards would differ from the single run)."""
    return sorted(node - set(driver))


def missing_files(environment: dict[str, str]) -> list[str]:
    """'NAME=path' for each file-naming variable whose file or folder is not on this node."""
    return [f"{name}={value}" for name, value in sorted(environment.items())
            if family_of(name).file and not os.path.exists(value)]
