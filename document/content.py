"""Does a stored object's content match its declared type? Checked at confirm.

Magic numbers come from `filetype` (pure Python, no libmagic): PDF, PNG, JPEG, TIFF and DICOM
(the 128-byte preamble, then ``DICM``). A DOCX is a ZIP whose central directory, at the end of
the file, names ``word/`` entries: `zipfile` reads it through the seekable storage reader (a
ranged GCS download), never the whole file. ``text/plain`` is valid UTF-8 without NUL, checked
a chunk at a time. A content type this module has no rule for is refused, so a new entry in
DOCUMENT_ALLOWED_CONTENT_TYPES cannot skip the check.
"""

import codecs
import zipfile
from typing import IO

import filetype

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
# filetype looks at most at the first 261 bytes (DICOM's "DICM" is at 128).
_HEAD_BYTES = 261
_TEXT_CHUNK_BYTES = 64 * 1024
# A DOCX's central directory is a few KiB; a larger one is not a document worth opening.
_MAX_CENTRAL_DIRECTORY_BYTES = 1024 * 1024
_BY_MAGIC = ("application/pdf", "image/png", "image/jpeg", "image/tiff", "application/dicom")


def _is_utf8_text(stream: IO[bytes]) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        while chunk := stream.read(_TEXT_CHUNK_BYTES):
            if b"\x00" in chunk:
                return False
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _is_docx(stream: IO[bytes], head: bytes) -> bool:
    if not head.startswith(b"PK\x03\x04"):
        return False
    stream.seek(0)
    try:
        with zipfile.ZipFile(stream) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return False
    return any(name.startswith("word/") for name in names) and "[Content_Types].xml" in names


def _central_directory_is_small(stream: IO[bytes], size: int) -> bool:
    # The end-of-central-directory record is in the last 64 KiB + 22 bytes; its size field
    # bounds what zipfile will read.
    tail_length = min(size, 65536 + 22)
    stream.seek(size - tail_length)
    tail = stream.read(tail_length)
    end = tail.rfind(b"PK\x05\x06")
    if end < 0 or end + 22 > len(tail):
        return False
    directory_size = int.from_bytes(tail[end + 12 : end + 16], "little")
    return directory_size <= _MAX_CENTRAL_DIRECTORY_BYTES


def content_matches(declared_type: str, stream: IO[bytes], size: int) -> bool:
    """Whether the bytes of `stream` (seekable, at its start, `size` bytes long) are what
    `declared_type` says."""
    head = stream.read(_HEAD_BYTES)
    if declared_type == "text/plain":
        stream.seek(0)
        return _is_utf8_text(stream)
    if declared_type == DOCX:
        return _central_directory_is_small(stream, size) and _is_docx(stream, head)
    if declared_type in _BY_MAGIC:
        return filetype.guess_mime(head) == declared_type
    return False
