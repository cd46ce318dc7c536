"""Where recordings live: relative paths under the one recording root, and nothing outside it."""
import glob
import logging
import os
import re

from freeswitch.esl.commands import check_uuid
from models.recording import FORMATS

logger = logging.getLogger(__name__)


class OutsideRecordingRoot(Exception):
    """A stored path resolves outside SIP_RECORDING_PATH (traversal, symlink): never served."""


class RecordingStorage:
    """Relative paths under one root; every path is resolved and refused if it leaves the root."""

    def __init__(self, root):
        if re.search(r"\s", root):
            # uuid_record splits its arguments on spaces: FreeSWITCH could not record there.
            raise ValueError(f"SIP_RECORDING_PATH must not contain whitespace: {root!r}")
        self.root = os.path.realpath(root)

    @staticmethod
    def source_relpath(call_id, when):
        """The WAV FreeSWITCH writes: YYYY/MM/DD/<call id>.wav (UTC date of the start)."""
        return f"{when:%Y/%m/%d}/{check_uuid(str(call_id))}.wav"

    @staticmethod
    def output_relpath(source_relpath, fmt):
        return os.path.splitext(source_relpath)[0] + "." + fmt

    def absolute(self, relpath):
        """The path as FreeSWITCH and the file system see it (not resolved)."""
        return os.path.join(self.root, relpath)

    def relative(self, path):
        """An absolute path under the root -> its relative path; None when outside."""
        try:
            full = self.resolve_loose(path)
        except OutsideRecordingRoot:
            return None
        return os.path.relpath(full, self.root)

    def resolve_loose(self, path):
        """Resolve path (relative to the root, or absolute); refuse anything outside the root."""
        full = os.path.realpath(os.path.join(self.root, path))
        if full == self.root or os.path.commonpath([self.root, full]) != self.root:
            raise OutsideRecordingRoot(path)
        return full

    def resolve(self, relpath):
        """The real path of a stored file; refuses absolute paths, `..` and symlinks out."""
        if not relpath or os.path.isabs(relpath):
            raise OutsideRecordingRoot(relpath)
        return self.resolve_loose(relpath)

    def ensure_directory(self, relpath):
        os.makedirs(os.path.dirname(self.absolute(relpath)), exist_ok=True)

    def partials_of(self, relpath):
        """Temporary files of an interrupted write of relpath (`.<name>.<random>.part`)."""
        directory, name = os.path.split(relpath)
        pattern = os.path.join(glob.escape(self.absolute(directory)),
                               f".{glob.escape(name)}.*.part")
        return [os.path.relpath(path, self.root) for path in glob.glob(pattern)]

    def remove(self, relpaths):
        """Delete stored files and their partial writes (missing ones are fine); returns a count."""
        removed = 0
        everything = [path for relpath in relpaths
                      for path in [relpath, *self.partials_of(relpath)]]
        for path in everything:
            try:
                os.unlink(self.resolve(path))
                removed += 1
            except FileNotFoundError:
                continue
            except OutsideRecordingRoot:
                logger.warning("refused to delete %r: outside the recording root", path)
            except OSError as exc:
                logger.warning("could not delete recording file %s: %s", path, exc)
        return removed


def stored_relpaths(recording):
    """Every file a recording may have on disk, including the source WAV and temp leftovers."""
    paths = {recording.source_path}
    for fmt in FORMATS:
        paths.add(RecordingStorage.output_relpath(recording.source_path, fmt))
    for entry in (recording.files or {}).values():
        paths.add(entry["path"])
    return sorted(paths)
