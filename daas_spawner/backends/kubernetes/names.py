"""The Kubernetes API's name grammars, as field types for the profile and checks for the pod builder.

Admins write namespaces, labels, priority classes, resource and image names into profiles; holding
them to the API's own grammar at load time means a typo stops the hub at start-up with the field's
name, instead of coming back as a 422 from the API server when a person starts a server.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

DNS_LABEL_MAX = 63
DNS_SUBDOMAIN_MAX = 253
PROPOSAL_PLACEHOLDER = "{proposal}"

_DNS_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*")
# The name part of a label key, a label value, an extended resource's name: 63 characters at most.
_QUALIFIED_NAME = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
# An image reference: [registry[:port]/]path[:tag][@digest]; no spaces, quotes or control characters.
_IMAGE_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]{0,511}")


def is_dns_label(value: str) -> bool:
    """A DNS-1123 label: what pod, volume and namespace names must be."""
    return _DNS_LABEL.fullmatch(value) is not None


def is_label_value(value: str) -> bool:
    """A label value: empty, or up to 63 letters, digits and - _ . starting and ending alphanumeric."""
    return value == "" or _QUALIFIED_NAME.fullmatch(value) is not None


def _dns_subdomain(value: str) -> bool:
    return len(value) <= DNS_SUBDOMAIN_MAX and _DNS_SUBDOMAIN.fullmatch(value) is not None


def _qualified_name(value: str, prefix_required: bool) -> bool:
    """`[prefix/]name`, the prefix a DNS subdomain (`kubernetes.io`, `nvidia.com`)."""
    prefix, slash, name = value.rpartition("/")
    if not slash:
        return not prefix_required and _QUALIFIED_NAME.fullmatch(value) is not None
    return _dns_subdomain(prefix) and _QUALIFIED_NAME.fullmatch(name) is not None


def check_label_key(value: str) -> str:
    if not _qualified_name(value, prefix_required=False):
        raise ValueError(
            f"{value!r} is not a label key ([prefix/]name: a DNS subdomain prefix, a name of at most 63 "
            "letters, digits and - _ . starting and ending alphanumeric)"
        )
    return value


def check_label_value(value: str) -> str:
    if not is_label_value(value):
        raise ValueError(
            f"{value!r} is not a label value (at most 63 letters, digits and - _ . starting and ending alphanumeric)"
        )
    return value


def check_resource_name(value: str) -> str:
    if not _qualified_name(value, prefix_required=True):
        raise ValueError(f"{value!r} is not an extended resource name (domain/name, e.g. nvidia.com/gpu)")
    return value


def check_dns_name(value: str) -> str:
    if not _dns_subdomain(value):
        raise ValueError(f"{value!r} is not a DNS-1123 name (lower-case letters, digits, - and .)")
    return value


def check_namespace_template(value: str) -> str:
    if value.count(PROPOSAL_PLACEHOLDER) > 1 or not is_dns_label(value.replace(PROPOSAL_PLACEHOLDER, "p")):
        raise ValueError(
            f"{value!r} is not a namespace (a DNS-1123 label: lower-case letters, digits and -, "
            f"at most 63) with at most one {PROPOSAL_PLACEHOLDER} placeholder"
        )
    return value


def check_image_ref(value: str) -> str:
    if _IMAGE_REF.fullmatch(value) is None:
        raise ValueError(
            f"{value!r} is not an image reference (registry/path:tag or @digest; letters, digits and . _ / : @ -)"
        )
    return value


LabelKey = Annotated[str, AfterValidator(check_label_key)]
LabelValue = Annotated[str, AfterValidator(check_label_value)]
ResourceName = Annotated[str, AfterValidator(check_resource_name)]
DnsName = Annotated[str, AfterValidator(check_dns_name)]
NamespaceTemplate = Annotated[str, AfterValidator(check_namespace_template)]
ImageRef = Annotated[str, AfterValidator(check_image_ref)]


def namespace_for(template: str, proposal: str | None) -> str:
    """The namespace a template names for a proposal (lower-cased); ValueError when there is none or it is no label."""
    if PROPOSAL_PLACEHOLDER not in template:
        return template
    if proposal is None:
        raise ValueError(f"namespace {template!r} is one per proposal, and no proposal was chosen")
    namespace = template.replace(PROPOSAL_PLACEHOLDER, proposal.lower())
    if not is_dns_label(namespace):
        raise ValueError(f"refusing namespace {namespace!r} for proposal {proposal!r}: not a DNS-1123 label")
    return namespace
