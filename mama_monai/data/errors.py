"""Exceptions raised while reading medical images.

Every error names the file or folder, the problem and what was expected, in one line, so that a
command-line tool can print ``str(error)`` and a batch job can log it next to the case it skipped.
Messages never contain patient identifiers (names, IDs, birth dates): only paths the user gave,
series UIDs and technical attributes.

Example:
    >>> from mama_monai.data.errors import ImageLoadError
    >>> try:
    ...     raise ImageLoadError("/data/case1", "folder is empty; expected DICOM files")
    ... except ValueError as err:
    ...     print(err)
    /data/case1: folder is empty; expected DICOM files
"""

from __future__ import annotations

from os import PathLike

__all__ = ["ImageLoadError", "UnsupportedTransferSyntaxError", "first_line"]


class ImageLoadError(ValueError):
    """An input file or folder cannot be turned into an image.

    Args:
        path: the file or folder at fault.
        problem: what is wrong and what was expected.

    Attributes:
        path: ``str(path)``.
    """

    def __init__(self, path: str | PathLike, problem: str) -> None:
        self.path = str(path)
        super().__init__(f"{self.path}: {problem}")


class UnsupportedTransferSyntaxError(ImageLoadError):
    """No installed decoder (pydicom plugins or SimpleITK's GDCM) can decode the pixel data.

    Args:
        path: the DICOM file.
        transfer_syntax_uid: the file's (0002,0010) Transfer Syntax UID.
        transfer_syntax_name: its name, or ``"unknown transfer syntax"``.
        detail: what each decoder said, shortened to one line.
    """

    def __init__(self, path: str | PathLike, transfer_syntax_uid: str, transfer_syntax_name: str, detail: str) -> None:
        self.transfer_syntax_uid = str(transfer_syntax_uid)
        super().__init__(
            path,
            f"cannot decode pixel data with transfer syntax '{transfer_syntax_name}' ({transfer_syntax_uid}): "
            f"{detail}. Convert the file to an uncompressed syntax (e.g. 'gdcmconv --raw') or install a "
            "pydicom decoder plugin (pylibjpeg, gdcm) that supports it",
        )


def first_line(err: BaseException) -> str:
    """The first informative line of a (possibly multi-line, C++-traced) exception message.

    Args:
        err: any exception, e.g. SimpleITK's ``RuntimeError`` whose first line is a source location.

    Returns:
        One line, or the exception's type name when the message is empty.
    """
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip() and ".cxx:" not in ln]
    lines = [ln.replace("sitk::ERROR: ", "") for ln in lines]
    return lines[0] if lines else type(err).__name__
