#!/usr/bin/python3
"""Writes a PALETTE COLOR test image with pydicom (Debian python3-pydicom
and python3-numpy), Explicit VR Little Endian, for the render tests.

usage: make_palette.py OUT.dcm small|bulk

small: 8-bit pixels, 256-entry palettes (first mapped 0) of 16-bit
       entries, 512 bytes each: inline in the metadata.
bulk:  12-bit pixels in 16 bits, 4000-entry palettes whose first mapped
       value is 64, 16-bit entries, 8000 bytes each: above the archive's
       bulk threshold (1024 bytes), so BulkDataURIs in the metadata.
"""
import sys

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

out, kind = sys.argv[1], sys.argv[2]
rows, cols = 96, 128
y, x = np.mgrid[0:rows, 0:cols]
if kind == "small":
    n, first, bits_alloc, bits_stored = 256, 0, 8, 8
    pixels = ((2 * x + y) % 256).astype(np.uint8)
else:
    n, first, bits_alloc, bits_stored = 4000, 64, 16, 12
    pixels = ((x * 4096 // cols + 7 * y) % 4096).astype(np.uint16)

i = np.arange(n, dtype=np.float64)
red = np.round(65535 * i / (n - 1))
green = np.round(65535 * (0.5 + 0.5 * np.sin(i / (n / 12.0))))
blue = np.round(65535 * ((n - 1 - i) / (n - 1)) ** 2)

meta = FileMetaDataset()
meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture
meta.MediaStorageSOPInstanceUID = generate_uid()
meta.TransferSyntaxUID = ExplicitVRLittleEndian

ds = Dataset()
ds.file_meta = meta
ds.is_little_endian, ds.is_implicit_VR = True, False
ds.SOPClassUID = meta.MediaStorageSOPClassUID
ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
ds.Modality = "OT"
ds.PatientName, ds.PatientID = "PALETTE^TEST", "PAL-" + kind
ds.Rows, ds.Columns = rows, cols
ds.SamplesPerPixel = 1
ds.PhotometricInterpretation = "PALETTE COLOR"
ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits_alloc, bits_stored, bits_stored - 1
ds.PixelRepresentation = 0
for tag, lut in ((0x00281101, red), (0x00281102, green), (0x00281103, blue)):
    ds.add_new(tag, "US", [n, first, 16])
    ds.add_new(tag + 0x100, "OW", lut.astype("<u2").tobytes())
ds.PixelData = pixels.astype("<u%d" % (bits_alloc // 8)).tobytes()
ds.save_as(out, write_like_original=False)
