"""Downloads of the recordings that download cards name (Jena weather, PhysioNet EEG): fetched with pooch into
the data directory, SHA-256 checked (or recorded on first use when the card pins none), unzipped once; offline,
one line says where to put the file by hand.
"""
from __future__ import annotations

import os
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

import pooch

from .cards import card, data_directory
from .errors import DataError
from .fileio import WriteError, atomic_write, atomic_write_bytes
from .files import FILE_FORMATS, error_reason, peek_channels, reading, sha256_of


def _sha_file(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def fetch(name, *, data_dir=None, download: bool = True) -> Path:
    """Path of a download card's recording, fetching it with pooch if it is not in the data directory.

    The card's ``[file]`` table gives ``url``, ``filename`` (what is stored: a plain file name), optionally
    ``member`` (the file inside a zip or tar archive, stored under its own file name) and ``sha256``; nothing is
    written outside the data directory (:func:`check_file_names`, and every archive member is checked before
    any is extracted). A file already in the data directory (``data_dir``, else
    $DSRECON_DATA_DIR, else <cache dir>/downloads) is used if its SHA-256 matches; a file placed there by hand
    is accepted under either the archive's or the member's name. If the card pins no hash, the hash of the first
    copy that proves readable (the archive extracts, the recording's header reads) is recorded in
    ``<filename>.sha256`` next to it and later loads must match it (trust on first use); a copy that fails
    verification or extraction is never recorded, and a failed extraction leaves no partial file.
    Raises: DataError, one line, when the download fails (offline: which file to place where), a hash
    does not match, the archive is corrupt (delete it and fetch again) or the data directory is unusable.
    """
    c = card(name) if not isinstance(name, dict) else name
    if c.get("kind") != "download":
        raise DataError(f"dataset {c.get('name')!r} is not a download (kind = {c.get('kind')!r}); nothing to fetch")
    f = c["file"]
    filename, inner = check_file_names(c)
    folder = data_directory(data_dir)
    if folder.exists() and not folder.is_dir():
        raise DataError(f"the data directory {folder} is a file, not a folder; pass --data-dir DIR (a folder) or set "
                        f"DSRECON_DATA_DIR")
    archive = folder / filename
    member = folder / PurePosixPath(inner).name if inner else None
    want = (f.get("sha256") or "").lower() or None
    for candidate, pinned in ((member, f.get("member_sha256")), (archive, want)):
        if candidate is not None and candidate.is_file():
            pinned = (pinned or "").lower() or None
            _verify(candidate, pinned)
            path = _unzip(archive, member, inner) if candidate == archive and member is not None else candidate
            if pinned is None:
                _trust_first_use(candidate, path)
            return path
    if not download:
        raise DataError(_place_hint(c, folder))
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"cannot create the data directory {folder} ({err.strerror or type(err).__name__}); pass "
                        f"--data-dir DIR (a writable folder) or set DSRECON_DATA_DIR") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DataError(f"the data directory {folder} is not writable; pass --data-dir DIR (a writable folder) or set "
                        f"DSRECON_DATA_DIR")
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel("WARNING")                # keep the one-line contract: no "Downloading ..." chatter
    try:
        try:
            path = Path(pooch.retrieve(f["url"], known_hash=None if want is None else f"sha256:{want}",
                                       fname=f["filename"], path=folder, progressbar=False))
        except ValueError as err:            # pooch: hash mismatch (the download is deleted by pooch)
            raise DataError(f"{f['filename']} from {f['url']}: {str(err).splitlines()[0]}") from None
        except Exception as err:              # requests' connection errors and HTTP errors: offline or moved
            raise DataError(f"cannot download {f['filename']} ({type(err).__name__}); " + _place_hint(c, folder)) from None
        finally:
            logger.setLevel(level)
        removed = "the download was removed: fetch again"
        try:
            _verify(path, want, fix=removed)
            out = _unzip(path, member, inner, fix=removed) if member is not None else path
            if want is None:
                _trust_first_use(path, out, fix=removed)
        except DataError:   # a copy that failed verification is not kept to fail again, nor what came out of it
            path.unlink(missing_ok=True)
            if member is not None:
                member.unlink(missing_ok=True)   # absent before this download (else it was used above)
            raise
        return out
    except DataError:
        if created and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()                   # a failed fetch leaves the file system as it found it
        raise


def check_file_names(c: dict) -> tuple[str, str | None]:
    """The card's ``[file] filename`` and ``member``, checked before anything is written: ``filename`` (what is
    stored in the data directory, and its ``.sha256`` record) must be a plain file name, ``member`` a relative
    path inside the archive; neither may be absolute or hold ``..``, so nothing lands outside the data directory.
    Raises: DataError, one line, naming the card, the key and the fix."""
    f = c["file"]
    where = f"card {c.get('_card_path') or c.get('name')!r}: [file]"
    filename, inner = f.get("filename"), f.get("member") or None
    if not isinstance(filename, str) or not _is_plain(filename):
        raise DataError(f"{where} filename = {filename!r} is not a plain file name (no folder, no '..', no "
                        f"absolute path): it names the file stored in the data directory; write e.g. "
                        f"filename = \"recording.csv\"")
    if inner is not None:
        parts = inner.split("/") if isinstance(inner, str) else []
        if not parts or not all(_is_plain(p) for p in parts):
            raise DataError(f"{where} member = {inner!r} is not a relative path inside the archive (no '..', no "
                            f"absolute path, '/' between folders); it is extracted into the data directory under its "
                            f"file name: write e.g. member = \"recording.csv\"")
    return filename, inner


def _is_plain(name: str) -> bool:
    """A plain file name: not empty, not . or .., no folder separator (either kind), no drive, no NUL."""
    return name not in ("", ".", "..") and not any(ch in name for ch in "/\\\0")


def _place_hint(c: dict, folder: Path) -> str:
    f = c["file"]
    names = f["filename"] + (f" (or the unzipped {PurePosixPath(f['member']).name})" if f.get("member") else "")
    return (f"dataset {c['name']!r} needs {names} from {f['url']}: place it in {folder} (or pass "
            f"--data-dir DIR / set DSRECON_DATA_DIR)")


def _verify(path: Path, want: str | None, *, fix: str = "delete it and fetch again") -> None:
    """Check ``path`` against the pinned hash ``want``, else against the hash recorded on first use (if any).
    Records nothing: see :func:`_trust_first_use`."""
    with reading(path, "zip" if path.suffix.lower() == ".zip" else FILE_FORMATS.get(path.suffix.lower(), "table")):
        got = sha256_of(path)
    rec = _sha_file(path)
    if want is None:
        if not rec.is_file():
            return
        want = (rec.read_text().split() or [""])[0].lower()
        if got != want:
            raise DataError(f"{path}: SHA-256 {got[:16]}... does not match {want[:16]}..., recorded in {rec.name} when "
                            f"it was first used; the file is corrupt or a different version: {fix} (delete "
                            f"{rec.name} too only if you trust a changed file)")
    if got != want:
        raise DataError(f"{path}: SHA-256 {got[:16]}... does not match the expected {want[:16]}...; the file is "
                        f"corrupt or a different version: {fix}")


def _trust_first_use(path: Path, readable: Path, *, fix: str = "delete it and fetch again") -> None:
    """Record the SHA-256 of an unpinned ``path`` once it has proven usable: ``readable`` (the file itself or
    the member extracted from it) must open and list its channels. A corrupt copy is never recorded, so
    deleting it and fetching again works."""
    rec = _sha_file(path)
    if rec.is_file():
        return
    try:
        peek_channels(readable)
    except DataError as err:
        raise DataError(f"{err} (the copy of {path.name} in {path.parent} is unusable: {fix})") from None
    got = sha256_of(path)
    try:
        atomic_write_bytes(rec, f"{got}  {path.name}\n".encode())
    except WriteError:     # a read-only data directory: the copy is still usable, only unrecorded
        pass


def _unzip(archive: Path, member: Path, inner: str | None = None, *, fix: str = "delete it and fetch again") -> Path:
    """Extract the archive's member ``inner`` (by default ``member``'s name) from ``archive`` (a zip or a tar,
    once) into ``member``; a corrupt archive (bad zip, CRC, deflate stream) is a DataError naming the archive,
    and the partial ``.part`` file is removed. Every member of the archive is checked first
    (:func:`_check_members`): an archive that would write outside its folder is refused whole."""
    if member.is_file():
        return member
    inner = inner or member.name
    is_tar = not zipfile.is_zipfile(archive) and _is_tar(archive)

    def extract(tmp):
        if is_tar:
            with tarfile.open(archive) as t:
                _check_members(archive, [(m.name, m) for m in t.getmembers()], member.parent, fix)
                src = t.getmember(inner)
                if not src.isfile():
                    raise DataError(f"{archive}: the member {inner!r} is not a regular file (a link, folder or "
                                    f"device); it is a different file: {fix}")
                _copy(t.extractfile(src), tmp)
        else:
            with zipfile.ZipFile(archive) as z:
                _check_members(archive, [(n, None) for n in z.namelist()], member.parent, fix)
                with z.open(inner) as src:
                    _copy(src, tmp)

    try:
        atomic_write(member, extract)     # the temp file beside ``member`` never survives a failure
    except DataError:
        raise
    except KeyError:
        raise DataError(f"{archive}: the archive has no member {inner!r}; it is a different file: {fix}") from None
    except WriteError as err:
        raise DataError(f"cannot extract {inner} from {archive} into {member.parent} "
                        f"({str(err).split(': ', 1)[-1]}); or pass --data-dir DIR") from None
    except Exception as err:  # noqa: BLE001 -- zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError
        raise DataError(f"{archive}: cannot extract {inner} ({error_reason(err)}); the archive is corrupt: {fix}") from None
    return member


def _is_tar(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def _copy(src, tmp) -> None:
    with src, open(tmp, "wb") as dst:
        for block in iter(lambda: src.read(1 << 20), b""):
            dst.write(block)


def _check_members(archive: Path, members, dest: Path, fix: str) -> None:
    """Refuse, before anything is extracted, an archive with a member that would land outside ``dest``: an
    absolute name, a ``..``, and (tar) a device, or a symbolic or hard link pointing outside; tar members also
    pass tarfile's ``data`` filter (Python's own rules for untrusted archives) where Python has it."""
    root = dest.resolve()
    for name, info in members:
        bad = None
        target = (root / name).resolve()
        if PurePosixPath(name).is_absolute() or name.startswith("\\") or ".." in name.replace("\\", "/").split("/"):
            bad = "an absolute path or '..'"
        elif target != root and root not in target.parents:
            bad = "a path outside its folder"
        elif info is not None:
            if info.isdev():
                bad = "a device"
            elif info.issym() or info.islnk():
                base = target.parent if info.issym() else root
                link = (base / info.linkname).resolve()
                if PurePosixPath(info.linkname).is_absolute() or (link != root and root not in link.parents):
                    bad = f"a link to {info.linkname!r}, outside its folder"
            if bad is None and hasattr(tarfile, "data_filter"):
                try:
                    tarfile.data_filter(info, str(root))
                except tarfile.FilterError as err:
                    bad = str(err).rstrip(".")
        if bad is not None:
            raise DataError(f"{archive}: the archive holds the member {name!r}, {bad}, which would be written "
                            f"outside {dest}; nothing was extracted: it is not a file to trust, {fix}")
