"""Small DICOM files written by pydicom (Debian python3-pydicom), for tests/data/test_dicom_decode.cpp:
an independent writer beside the tests' DCMTK one. Stored values follow a formula the C++ test
recomputes: pixel (x, y) of a W x H image is
    (x * 37 + y * 101) % 4096          (12 bits stored in 16, unsigned)
  - pydicom_mono1_window_be.dcm: 20 x 16, MONOCHROME1, Rescale Slope 1 / Intercept -1024,
    Window Center 0 / Width 3000, Pixel Spacing 0.15 \\ 0.16, Explicit VR *Big* Endian;
  - pydicom_rle_percentile.dcm: 20 x 16, MONOCHROME2, no rescale, no window, Imager Pixel
    Spacing 0.2 \\ 0.2, RLE Lossless (pydicom's own RLE encoder).

    /usr/bin/python3 tests/gen/dicom_pydicom.py   ->  tests/golden/pydicom_*.dcm
"""
import os

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, RLELossless

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "golden")
W, H = 20, 16


def values():
    y, x = np.mgrid[0:H, 0:W]
    return ((x * 37 + y * 101) % 4096).astype(np.uint16)


def base(photometric):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray, for presentation
    meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.PatientID = "gen-pydicom"
    ds.Rows, ds.Columns = H, W
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = 0
    return ds


def main():
    os.makedirs(OUT, exist_ok=True)
    ds = base("MONOCHROME1")
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    ds.WindowCenter, ds.WindowWidth = 0, 3000
    ds.PixelSpacing = [0.15, 0.16]
    ds.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
    ds.is_little_endian, ds.is_implicit_VR = False, False
    ds.PixelData = values().astype(">u2").tobytes()
    ds.save_as(os.path.join(OUT, "pydicom_mono1_window_be.dcm"), write_like_original=False)

    ds = base("MONOCHROME2")
    ds.ImagerPixelSpacing = [0.2, 0.2]
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.compress(RLELossless, values())
    ds.save_as(os.path.join(OUT, "pydicom_rle_percentile.dcm"), write_like_original=False)
    for name in ("pydicom_mono1_window_be.dcm", "pydicom_rle_percentile.dcm"):
        back = pydicom.dcmread(os.path.join(OUT, name))
        assert (back.pixel_array == values()).all(), name
        print(name, back.file_meta.TransferSyntaxUID.name, os.path.getsize(os.path.join(OUT, name)), "bytes")


main()
