// Package codec decodes one frame of pixel data, as the archive stores it
// (native bytes in little endian, or an encapsulated codestream), into
// integer samples: one Decoder interface, a registry keyed by transfer
// syntax UID.
//
// Compiled in (pure Go, no cgo): native (implicit/explicit VR LE,
// explicit VR BE after the archive's swap, deflated after inflation;
// BitsAllocated 1/8/16/32, signed, BitsStored/HighBit, planar
// configuration, YBR_FULL_422 upsampling), RLE Lossless (written here),
// JPEG Baseline and 8-bit Extended (image/jpeg, with libjpeg's chroma
// upsampling and dcmtk's colour rule), JPEG Lossless process 14 with all
// predictors (written here). Other syntaxes (JPEG-LS, JPEG 2000, HTJ2K,
// 12-bit JPEG) give ErrUnsupported naming the syntax.
//
// Correctness: every lossless corpus file decodes bit-exact against
// dcmtk (dcmdrle, dcmdjpeg); JPEG baseline PSNR is above 65 dB against
// dcmdjpeg (codec_test.go).
package codec
