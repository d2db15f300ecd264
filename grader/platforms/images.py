"""The grading images: the Gradescope bundle's ``setup.sh`` run on a base image.

``ensure_image`` builds an assignment's image once per bundle content (the tag is a digest
of the base image, the Dockerfile and the bundle) and prunes the older ones; ``grader image``
and ``grader base-image`` are its command line. No registry is assumed: the base can be
built offline from Debian packages (``make base-image``).
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import tempfile
import time
from pathlib import Path

from grader.course.assignment import Assignment, load_assignment, repo_root
from grader.errors import DockerError

__all__ = [
    "DEFAULT_BASE_IMAGE",
    "LABEL",
    "OFFLINE_BASE_IMAGE",
    "add_commands",
    "docker_client",
    "ensure_image",
    "image_tag",
]

#: Base when neither --base nor GRADER_BASE_IMAGE says otherwise. Needs a registry (or a
#: pre-loaded image); ``make base-image`` builds minitorch-grader-base:bookworm offline.
DEFAULT_BASE_IMAGE = "python:3.11-slim"
OFFLINE_BASE_IMAGE = "minitorch-grader-base:bookworm"
IMAGE_REPO = "minitorch-grader"
LABEL = "org.minitorch.grader"


def base_image_default() -> str:
    """``GRADER_BASE_IMAGE`` if set (CI and the Makefile use the offline base), else the default."""
    return os.environ.get("GRADER_BASE_IMAGE") or DEFAULT_BASE_IMAGE


# --------------------------------------------------------------------------- engine


def docker_client():
    """A docker SDK client, or a ``DockerError`` that tells the TA how to start the engine."""
    try:
        import docker
    except ImportError as exc:  # pragma: no cover - docker is a pinned dependency
        raise DockerError("the 'docker' Python package is missing (pip install docker)") from exc
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as exc:
        raise DockerError(
            f"cannot reach the Docker engine ({exc.__class__.__name__}: {exc}). Start it "
            "(as root: docker/start-dockerd.sh, or 'systemctl start docker') and check that "
            "your user may use it ('docker info')."
        ) from exc
    return client


# --------------------------------------------------------------------------- images


def image_tag(assignment: Assignment, digest: str) -> str:
    return f"{IMAGE_REPO}/{assignment.name}:{digest[:16]}"


def _dockerfile(root: Path) -> str:
    return (root / "docker" / "Dockerfile.autograder").read_text(encoding="utf-8")


def _image_digest(assignment: Assignment, base_id: str, dockerfile: str) -> str:
    """Content address of the image: bundle entries + base image id + Dockerfile."""
    from grader.platforms import bundle

    root = assignment.root
    cache = root / "build"
    wheelhouse = bundle.build_wheelhouse(
        bundle.project_requirements(root), cache=cache / "wheelhouse"
    )
    grader_wheel = bundle.build_grader_wheel(root, cache)
    digest = hashlib.sha256()
    digest.update(base_id.encode() + b"\0" + dockerfile.encode() + b"\0")
    for name, data, mode in bundle.bundle_entries(root, assignment, wheelhouse, grader_wheel):
        digest.update(f"{name}\0{mode}\0{len(data)}\0".encode())
        digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()


def _base_id(client, base: str) -> str:
    import docker.errors

    try:
        return client.images.get(base).id
    except docker.errors.ImageNotFound:
        pass
    except docker.errors.APIError as exc:
        raise DockerError(f"cannot inspect the base image {base}: {exc}") from exc
    try:
        return client.images.pull(base).id
    except docker.errors.APIError as exc:
        raise DockerError(
            f"the base image {base} is not on this machine and cannot be pulled ({exc}). "
            f"Without a registry, build the offline base with 'make base-image' and set "
            f"GRADER_BASE_IMAGE={OFFLINE_BASE_IMAGE} (or pass --base to 'grader image')."
        ) from exc


def ensure_image(
    assignment: Assignment,
    *,
    base: str | None = None,
    client=None,
    force: bool = False,
    log=None,
) -> str:
    """Build (or reuse) the grading image of ``assignment`` and return its tag.

    The tag is a hash of everything that goes into the image, so an unchanged bundle on an
    unchanged base is a cache hit that costs one ``images.get``.
    """
    import docker.errors

    client = client or docker_client()
    base = base or base_image_default()
    dockerfile = _dockerfile(assignment.root)
    digest = _image_digest(assignment, _base_id(client, base), dockerfile)
    tag = image_tag(assignment, digest)
    if not force:
        try:
            client.images.get(tag)
            return tag
        except docker.errors.ImageNotFound:
            pass
    from grader.platforms.bundle import build_bundle

    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="grader-image.") as tmp:
        zip_path = build_bundle(assignment, Path(tmp) / "autograder.zip")
        context = io.BytesIO()
        with tarfile.open(fileobj=context, mode="w") as tar:
            add_tar_bytes(tar, "Dockerfile", dockerfile.encode(), 0o644)
            tar.add(zip_path, arcname="autograder.zip")
        context.seek(0)
        try:
            _, logs = client.images.build(
                fileobj=context,
                custom_context=True,
                tag=tag,
                buildargs={"BASE": base},
                labels={LABEL: assignment.name, f"{LABEL}.digest": digest},
                rm=True,
                forcerm=True,
                pull=False,
                network_mode="none",
            )
        except docker.errors.BuildError as exc:
            lines = [str(chunk.get("stream", chunk.get("error", ""))) for chunk in exc.build_log]
            tail = "".join(lines)[-3000:]
            raise DockerError(
                f"building the image for {assignment.name} failed: {exc.msg}\n{tail}"
            ) from exc
        except docker.errors.APIError as exc:
            raise DockerError(f"building the image for {assignment.name} failed: {exc}") from exc
        if log is not None:
            for chunk in logs:
                if "stream" in chunk:
                    log(chunk["stream"].rstrip())
    client.images.get(tag).tag(f"{IMAGE_REPO}/{assignment.name}", "latest")
    _prune_old_images(client, assignment, keep=tag)
    if log is not None:
        log(f"built {tag} in {time.monotonic() - start:.1f} s")
    return tag


def _prune_old_images(client, assignment: Assignment, keep: str, age: float = 3600.0) -> None:
    """Remove this assignment's images of earlier bundles (each is ~50 MB over the base).

    Only images older than ``age`` seconds go, so a batch started a moment ago with the
    previous image keeps it; an image in use by a container fails to delete and stays.
    """
    from datetime import datetime, timezone

    import docker.errors

    try:
        images = client.images.list(filters={"label": f"{LABEL}={assignment.name}"})
    except docker.errors.APIError:
        return
    for img in images:
        if keep in img.tags:
            continue
        created = str(img.attrs.get("Created", ""))[:19]
        try:
            born = datetime.fromisoformat(created).replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            continue
        if time.time() - born < age:
            continue
        for tag in img.tags:
            try:
                client.images.remove(tag, noprune=False)
            except docker.errors.APIError:
                pass


def add_tar_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


# --------------------------------------------------------------------------- CLI


def _cmd_image(args) -> int:
    assignment = load_assignment(args.assignment)
    tag = ensure_image(
        assignment, base=args.base, force=args.force, log=print if args.verbose else None
    )
    print(tag)
    return 0


def _cmd_base_image(args) -> int:
    import subprocess

    script = repo_root() / "docker" / "build-base-image.sh"
    cmd = ["bash", str(script), *(["--force"] if args.force else []), args.tag]
    return subprocess.run(cmd).returncode


def add_commands(subparsers) -> None:
    """Register ``image`` and ``base-image``."""
    p = subparsers.add_parser(
        "image",
        help="build the local grading image of an assignment (Gradescope layout)",
        description=(
            "Build a Docker image that runs the assignment's Gradescope bundle exactly as "
            "Gradescope does (unzip into /autograder/source, run setup.sh). Cached by the "
            "bundle's content: an unchanged bundle is not rebuilt. Prints the image tag."
        ),
    )
    p.add_argument("assignment", help="assignment name, e.g. module1")
    p.add_argument(
        "--base",
        default=None,
        help=f"base image (default: $GRADER_BASE_IMAGE or {DEFAULT_BASE_IMAGE}; offline: "
        f"{OFFLINE_BASE_IMAGE} from 'grader base-image')",
    )
    p.add_argument("--force", action="store_true", help="rebuild even if the image exists")
    p.add_argument("-v", "--verbose", action="store_true", help="show the build log")
    p.set_defaults(func=_cmd_image)

    b = subparsers.add_parser(
        "base-image",
        help="build the offline base image from Debian packages (mmdebstrap + docker import)",
    )
    b.add_argument("tag", nargs="?", default=OFFLINE_BASE_IMAGE)
    b.add_argument("--force", action="store_true", help="rebuild even if the tag exists")
    b.set_defaults(func=_cmd_base_image)
