"""Image references, parsed as the kubelet and container runtimes parse them.

Aspects covered:
- valid references, with the domain, path, tag and digest they parse into; rows taken from
  distribution/reference's own tests (reference_test.go, normalize_test.go);
- invalid references, one row per rule of the grammar, with the reason users read;
- properties: any text yields a reference or a reason, never another exception; references
  built from the grammar always parse back into their parts.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from federator.core import imageref
from federator.core.imageref import ImageReference, InvalidImageReference

HEX64 = "f" * 64
DIGEST = f"sha256:{HEX64}"

VALID: dict[str, tuple[str, ImageReference]] = {
    # id: (reference, what it parses into)
    "familiar-name": ("ubuntu", ImageReference(domain="docker.io", path="library/ubuntu")),
    "single-letter": ("i", ImageReference(domain="docker.io", path="library/i")),
    "hub-user": ("docker/docker", ImageReference(domain="docker.io", path="docker/docker")),
    "registry-tag": (
        "registry.example.com/cdr/aggregator:1.4.2",
        ImageReference(domain="registry.example.com", path="cdr/aggregator", tag="1.4.2"),
    ),
    "host-port": ("test:5000/repo", ImageReference(domain="test:5000", path="repo")),
    "port-looks-like-tag": (
        "test.com:5000",
        ImageReference(domain="docker.io", path="library/test.com", tag="5000"),
    ),
    "tag-and-digest": (
        f"test:5000/repo:tag@{DIGEST}",
        ImageReference(domain="test:5000", path="repo", tag="tag", digest=DIGEST),
    ),
    "digest-only": (
        f"test:5000/repo@{DIGEST}",
        ImageReference(domain="test:5000", path="repo", digest=DIGEST),
    ),
    "sha512-digest": (
        f"repo@sha512:{'a' * 128}",
        ImageReference(domain="docker.io", path="library/repo", digest=f"sha512:{'a' * 128}"),
    ),
    "uppercase-tag": (
        "lowercase:Uppercase",
        ImageReference(domain="docker.io", path="library/lowercase", tag="Uppercase"),
    ),
    "uppercase-domain": ("Docker/docker", ImageReference(domain="Docker", path="docker")),
    "localhost": ("localhost/debian", ImageReference(domain="localhost", path="debian")),
    "legacy-hub": (
        "index.docker.io/debian",
        ImageReference(domain="docker.io", path="library/debian"),
    ),
    "ipv4-port": ("192.168.1.1:5000/repo", ImageReference(domain="192.168.1.1:5000", path="repo")),
    "ipv6-port": (
        "[2001:db8::1]:5000/repo",
        ImageReference(domain="[2001:db8::1]:5000", path="repo"),
    ),
    "punycode": (
        "xn--n3h.com/myimage:xn--n3h.com",
        ImageReference(domain="xn--n3h.com", path="myimage", tag="xn--n3h.com"),
    ),
    "separators": (
        "b.gcr.io/a__b/c---d/e.f_g:test.example.com",
        ImageReference(domain="b.gcr.io", path="a__b/c---d/e.f_g", tag="test.example.com"),
    ),
    "hex-with-domain": (
        f"docker.io/{'1a' * 32}",
        ImageReference(domain="docker.io", path=f"library/{'1a' * 32}"),
    ),
    "longest-path": (
        f"example.com/{'a' * 255}:tag",
        ImageReference(domain="example.com", path="a" * 255, tag="tag"),
    ),
    "longest-tag": (
        f"repo:{'t' * 128}",
        ImageReference(domain="docker.io", path="library/repo", tag="t" * 128),
    ),
}


@pytest.mark.parametrize(("text", "expected"), list(VALID.values()), ids=list(VALID))
def test_valid_references_parse_into_their_parts(text: str, expected: ImageReference) -> None:
    assert imageref.parse(text) == expected
    assert imageref.problem(text) is None


INVALID: dict[str, tuple[str, str]] = {
    # id: (reference, a fragment of the reason)
    "empty": ("", "empty"),
    "white-space": ("registry.example.com/app :1", "white space"),
    "trailing-newline": ("app:1\n", "white space"),
    "uppercase-repository": ("Uppercase:tag", "lower case"),
    "uppercase-path": ("test:5000/Uppercase/lowercase:tag", "lower case"),
    "uppercase-hub-path": ("docker/Docker", "lower case"),
    "only-tag": (":justtag", "path components"),
    "only-digest": (f"@{DIGEST}", "path components"),
    "short-digest": ("repo@sha256:" + "f" * 34, "64, 96 or 128"),
    "upper-hex-digest": ("repo@sha256:" + "F" * 64, "lower-case hexadecimal"),
    "unknown-digest-algorithm": (f"validname@invaliddigest:{HEX64}", "sha256, sha384 or sha512"),
    "path-too-long": ("domain/" + "a" * 256 + ":tag", "longer than 255"),
    "bad-characters": ("aa/asdf$$^/aa", "path components"),
    "double-slash": ("docker///docker", "empty path component"),
    "trailing-slash": ("docker/", "empty path component"),
    "leading-dash": ("-docker/docker", "path components"),
    "consecutive-periods": ("dock..er/docker", "path components"),
    "bare-ipv6": ("[2001:db8::1]", "needs a repository"),
    "ipv6-zone": ("[fe80::1%eth0]:5000/repo", "path components"),
    "unbracketed-ipv6": ("fc00::1:5000/debian", "path components"),
    "image-id": ("1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a", "image ID"),
    "tag-starts-with-dot": ("app:.hidden", "tag '.hidden'"),
    "tag-too-long": (f"repo:{'t' * 129}", "1-128"),
    "url": ("https://registry.example.com/app:1", "without a scheme"),
}


@pytest.mark.parametrize(("text", "fragment"), list(INVALID.values()), ids=list(INVALID))
def test_invalid_references_say_why(text: str, fragment: str) -> None:
    with pytest.raises(InvalidImageReference) as raised:
        imageref.parse(text)
    assert fragment in raised.value.reason
    assert imageref.problem(text) == raised.value.reason


@given(st.text(max_size=40))
def test_any_text_yields_a_reference_or_a_reason(text: str) -> None:
    reason = imageref.problem(text)
    assert reason is None or reason


_COMPONENT = st.from_regex(r"[a-z0-9]{1,6}((\.|_|__|-{1,3})[a-z0-9]{1,6}){0,2}", fullmatch=True)


@given(
    domain=st.sampled_from(["registry.example.com", "localhost:5000", "10.0.0.1:443", "[::1]"]),
    path=st.lists(_COMPONENT, min_size=1, max_size=4).map("/".join),
    tag=st.none() | st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True),
    digest=st.none() | st.from_regex(r"[a-f0-9]{64}", fullmatch=True).map("sha256:".__add__),
)
def test_references_built_from_the_grammar_parse_back(
    domain: str, path: str, tag: str | None, digest: str | None
) -> None:
    text = f"{domain}/{path}" + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    assert imageref.parse(text) == ImageReference(domain=domain, path=path, tag=tag, digest=digest)
