# Helper for dcm tests: prints, for each file, one JSON line with the
# SHA-256 of each frame's pixel bytes as pydicom sees them, and the
# decoded PatientName components. Run with Debian's /usr/bin/python3.
import hashlib
import json
import sys

import pydicom
from pydicom.encaps import generate_pixel_data_frame

for path in sys.argv[1:]:
    out = {"path": path}
    try:
        ds = pydicom.dcmread(path)
        pn = ds.get("PatientName")
        if pn is not None:
            out["pn"] = (list(pn.components) + ["", "", ""])[:3]
        if "PixelData" in ds:
            nf = int(ds.get("NumberOfFrames", 1) or 1)
            pd = ds.PixelData
            if ds.file_meta.TransferSyntaxUID.is_compressed:
                frames = list(generate_pixel_data_frame(pd, nf))
            else:
                bits = ds.Rows * ds.Columns * ds.get("SamplesPerPixel", 1) * ds.BitsAllocated
                fs = bits // 8
                frames = [pd[i * fs:(i + 1) * fs] for i in range(nf)]
            out["frames"] = [hashlib.sha256(f).hexdigest() for f in frames]
    except Exception as e:  # reported, the Go test decides
        out["error"] = repr(e)
    print(json.dumps(out))
