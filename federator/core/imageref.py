"""Container image references, parsed as the kubelet and container runtimes parse them.

An image the runtime cannot parse fails only when a pod starts (`InvalidImageName`), long after
federator applied the child and read it as Progressing. So every image field is parsed here,
before anything is applied, with the grammar of github.com/distribution/reference (the parser
behind the kubelet, containerd and Docker):

    reference        := name [ ":" tag ] [ "@" digest ]
    name             := [domain "/"] path
    domain           := host [":" port-number]
    host             := domain-name | "[" IPv6 address "]"
    domain-name      := domain-component ("." domain-component)*
    domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
    path             := path-component ("/" path-component)*     (at most 255 characters)
    path-component   := [a-z0-9]+ (separator [a-z0-9]+)*
    separator        := [_.] | "__" | "-"+
    tag              := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest           := "sha256:" 64 hex | "sha384:" 96 hex | "sha512:" 128 hex (lower case)

Familiar names are normalised the same way (`ParseNormalizedNamed`): a first component without
`.` or `:` that is not `localhost` and is lower case belongs to the path on Docker Hub, so
`Team/app` is refused where `registry.example.com/team/app` is not.

Written here rather than taken from PyPI: the one maintained port (docker-image-py) needs the
compiled `regex` package and ships no type hints, for about forty lines of grammar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PATH_MAX = 255
"""distribution/reference's RepositoryNameTotalLengthMax: the path, without the domain."""

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"  # Go's \w is ASCII-only
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

_REFERENCE = re.compile(
    rf"(?P<name>(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_PATH}))"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?"
)
_IDENTIFIER = re.compile(r"[a-f0-9]{64}")
_DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
_LOWER_HEX = re.compile(r"[a-f0-9]+")

EXAMPLE = "registry.example.com/team/app:1.2.0"


class InvalidImageReference(ValueError):
    """The text is no image reference; `reason` says what is wrong, for a user."""

    def __init__(self, text: str, reason: str) -> None:
        self.text = text
        self.reason = reason
        super().__init__(f"{text!r} is not a valid image reference: {reason}")


@dataclass(frozen=True, kw_only=True)
class ImageReference:
    """A parsed reference, normalised like the runtimes do (`ubuntu` is on docker.io)."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.path}"


def _split_domain(text: str) -> tuple[str, str]:
    """distribution/reference's splitDockerDomain: which part of a familiar name is a host."""
    first, slash, rest = text.partition("/")
    if not slash:
        return "docker.io", f"library/{text}"
    if first == "localhost" or any(c in first for c in ".:") or first.lower() != first:
        domain, remainder = ("docker.io" if first == "index.docker.io" else first), rest
    else:
        domain, remainder = "docker.io", text
    if domain == "docker.io" and "/" not in remainder:
        remainder = f"library/{remainder}"
    return domain, remainder


def parse(text: str) -> ImageReference:
    """The reference in `text`, or `InvalidImageReference` saying why not."""
    if not text:
        raise InvalidImageReference(text, "it is empty")
    if text != text.strip() or any(c.isspace() for c in text):
        raise InvalidImageReference(text, "it contains white space")
    if _IDENTIFIER.fullmatch(text):
        raise InvalidImageReference(
            text, "a 64-character hexadecimal string is an image ID, not a repository name"
        )
    domain, remainder = _split_domain(text)
    repository = remainder.partition("@")[0].partition(":")[0]
    if repository.lower() != repository:
        raise InvalidImageReference(text, "the repository name must be lower case")
    match = _REFERENCE.fullmatch(f"{domain}/{remainder}")
    if match is None:
        raise InvalidImageReference(text, _format_reason(text))
    if len(match["path"]) > PATH_MAX:
        raise InvalidImageReference(
            text, f"the repository name is longer than {PATH_MAX} characters"
        )
    digest = match["digest"]
    if digest is not None:
        algorithm, _, encoded = digest.partition(":")
        if _DIGEST_LENGTHS.get(algorithm) != len(encoded) or not _LOWER_HEX.fullmatch(encoded):
            raise InvalidImageReference(
                text,
                f"digest {digest!r} must be sha256, sha384 or sha512 followed by 64, 96 or "
                "128 lower-case hexadecimal digits",
            )
    return ImageReference(
        domain=match["domain"] or "", path=match["path"], tag=match["tag"], digest=digest
    )


def _format_reason(text: str) -> str:
    """The likeliest mistake, for the message (the grammar itself is in the module docstring)."""
    reference, at, digest = text.partition("@")
    if at and not re.fullmatch(_DIGEST, digest):
        return f"digest {digest!r} must be sha256:<64 hexadecimal digits> (or sha384, sha512)"
    name, colon, tag = reference.rpartition(":")
    if not colon or "/" in tag or "]" in tag:  # no tag: that colon was a port or in an IPv6 host
        name, tag = reference, ""
    if reference.startswith("[") and "/" not in reference:
        return "a registry host needs a repository after it: [host]:port/repository"
    if tag and not re.fullmatch(_TAG, tag):
        return (
            f"tag {tag!r} must be 1-128 letters, digits, '_', '.' or '-', not starting with "
            "'.' or '-'"
        )
    if "://" in text:
        return "write the registry host without a scheme (no https://)"
    if "//" in name or name.endswith("/") or name.startswith("/"):
        return "it has an empty path component"
    return (
        "path components are lower-case letters and digits separated by '.', '_', '__' or "
        "dashes, and the registry is a host name with an optional :port"
    )


def problem(text: str) -> str | None:
    """Why `text` is no image reference, or None when it is one."""
    try:
        parse(text)
    except InvalidImageReference as exc:
        return exc.reason
    return None
