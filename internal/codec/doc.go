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
// upsampling and dcmtk's colour rule), JPEG Extended 12-bit (sequential
// DCT, written here: jpeg12.go), JPEG Lossless process 14 with all
// predictors (written here).
//
// With cgo (the default build; needs the Debian packages libcharls-dev
// and libopenjp2-7-dev to build, libcharls2 and libopenjp2-7 to run):
// JPEG-LS lossless and near-lossless (CharLS 2.4, charls.go), JPEG 2000
// lossless and lossy, J2K codestream or JP2 file, and HTJ2K
// (OpenJPEG 2.5, openjpeg.go). Built with CGO_ENABLED=0 those syntaxes
// give ErrUnsupported naming the syntax and the missing build option.
//
// Correctness (codec_test.go, htj2k_test.go): every lossless corpus file
// decodes bit-exact against dcmtk (dcmdrle, dcmdjpeg, dcmdjpls) or GDCM
// (gdcmconv --raw, JPEG 2000); lossy ones are within 45 dB PSNR (JPEG
// baseline above 65 dB against dcmdjpeg, 12-bit JPEG 87 dB against
// dcmdjpeg). HTJ2K is checked on codestreams made by OpenJPH
// (testdata/README.md): lossless exact, lossy 103 dB against ojph_expand.
//
// Sample values: a decoded codestream sample is treated as the pixel
// cell a native object would store, then masked to BitsStored at
// HighBit and sign-extended as for native data. Where a JPEG 2000
// codestream declares more precision than BitsStored (GDCM writes 16
// for 12-bit data) the values are clamped to the BitsStored range
// instead, so that lossy overshoot does not wrap.
package codec
